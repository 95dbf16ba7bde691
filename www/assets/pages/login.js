// login.js: the login form; a message says why the user is here (session
// expired, logged out).
import { api, setCsrf } from '../api.js';
import { h, field, errorSlot, onSubmit, notice } from '../dom.js';
import { loggedIn, loginMessage } from '../app.js';

export async function render(main) {
  const msg = loginMessage();
  const err = errorSlot();
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const form = h('form', { class: 'login card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Log in to quarklink'),
    msg ? notice(msg, 'info') : null,
    field('User name', user), field('Password', pw), err,
    h('button', { type: 'submit', class: 'primary' }, 'Log in'));
  onSubmit(form, err, async (fd) => {
    const r = await api('POST', '/login', { username: fd.get('username'), password: fd.get('password') }, { quiet401: true });
    setCsrf(r.csrf_token);
    await loggedIn();
  });
  main.classList.add('center');
  main.append(form);
}
