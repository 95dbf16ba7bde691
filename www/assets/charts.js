// charts.js: small bar charts with uPlot (vendored): a count per day.
import { load } from './vendor.js';
import { h } from './dom.js';

// barChart(title, days[], counts[], {label}) -> element (a figure with a
// text summary for screen readers; the canvas is decorative).
export async function barChart(title, xs, ys, { label = 'count', width = 560 } = {}) {
  const uPlot = await load('uPlot');
  const total = ys.reduce((a, b) => a + b, 0);
  const holder = h('div', { class: 'chart', 'aria-hidden': 'true' });
  const fig = h('figure', { class: 'chartbox' }, h('figcaption', {}, `${title}: ${total} in all`), holder);
  const w = Math.max(280, Math.min(width, (document.getElementById('main')?.clientWidth || width) - 48));
  // eslint-disable-next-line new-cap
  const u = new uPlot({
    width: w, height: 180, legend: { show: false }, cursor: { show: true },
    scales: { x: { time: true }, y: { range: (s, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label, size: 50 }],
    series: [{}, { label, stroke: '#1b4d89', fill: 'rgba(27,77,137,0.35)', paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } }],
  }, [xs, ys], holder);
  fig.chart = u;
  return fig;
}

export function dayBuckets(fromMs, days) {
  const start = Math.floor(fromMs / 86400000) * 86400000;
  return Array.from({ length: days }, (_, i) => (start + i * 86400000) / 1000);
}

// lineChart(title, xs, [{label, values, color}]) -> a figure with two or
// more series over time (update outcomes per hour).
export async function lineChart(title, xs, series, { width = 560 } = {}) {
  const uPlot = await load('uPlot');
  const holder = h('div', { class: 'chart', 'aria-hidden': 'true' });
  const summary = series.map((s) => `${s.label} ${s.values.reduce((a, b) => a + b, 0)}`).join(', ');
  const fig = h('figure', { class: 'chartbox' }, h('figcaption', {}, `${title}: ${summary}`), holder);
  const w = Math.max(280, Math.min(width, (document.getElementById('main')?.clientWidth || width) - 48));
  // eslint-disable-next-line new-cap
  fig.chart = new uPlot({
    width: w, height: 180, legend: { show: true },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { size: 50 }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false } }))],
  }, [xs, ...series.map((s) => s.values)], holder);
  return fig;
}
