/* http_status.c: the reason phrase of each status quarklinkd answers, for
 * evhttp replies and for the connection layer's own refusals. */
#include "http_status.h"

#include <stddef.h>

static const struct { int status; const char *title; } http_titles[] = {
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 204, "No Content" }, { 206, "Partial Content" },
	{ 304, "Not Modified" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 409, "Conflict" }, { 410, "Gone" },
	{ 412, "Precondition Failed" }, { 416, "Range Not Satisfiable" },
	{ 413, "Content Too Large" }, { 415, "Unsupported Media Type" },
	{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
};

const char *
http_status_title(int status)
{
	for (size_t i = 0; i < sizeof(http_titles) / sizeof(http_titles[0]); i++)
		if (http_titles[i].status == status)
			return http_titles[i].title;
	return "Error";
}

