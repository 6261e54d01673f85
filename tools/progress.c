/*
** progress.c - the progress bar of long operations: drawn on stderr with
** \r when it is a terminal, at most ten times a second, and wiped at the
** end so that what follows starts on a clean line.
*/
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define BAR_WIDTH 30
#define REDRAW_MS 100

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_progress_start(cli_progress *p, const cli_ctx *c, const char *label) {
  memset(p, 0, sizeof(*p));
  /* Piped or logged stderr gets no bar: \r would only garble the file. */
  p->on = isatty(STDERR_FILENO) && !c->json && !c->quiet;
  p->label = label;
}

void cli_progress_attach(cli_progress *p, klevdb_options *o) {
  if (!p->on) return;
  o->progress = cli_progress_cb;
  o->progress_arg = p;
}

void cli_progress_cb(void *arg, int64_t done, int64_t total) {
  cli_progress *p = arg;
  if (!p || !p->on || total <= 0) return;
  int64_t now = mono_ms();
  if (p->drawn && now - p->last_ms < REDRAW_MS) return;
  if (done < 0) done = 0;
  if (done > total) done = total;
  int pct = (int)(done * 100 / total);
  int fill = (int)(done * BAR_WIDTH / total);
  char bar[BAR_WIDTH + 1];
  memset(bar, '#', (size_t)fill);
  memset(bar + fill, '-', (size_t)(BAR_WIDTH - fill));
  bar[BAR_WIDTH] = 0;
  fprintf(stderr, "\r%s [%s] %3d%%", p->label, bar, pct);
  fflush(stderr);
  p->drawn = true;
  p->last_ms = now;
}

void cli_progress_end(cli_progress *p) {
  if (!p->on || !p->drawn) return;
  /* Back to the line's start and erase it (ANSI "erase to end of line"). */
  fputs("\r\033[K", stderr);
  fflush(stderr);
  p->drawn = false;
}
