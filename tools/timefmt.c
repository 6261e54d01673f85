/*
** timefmt.c - times as people type and read them: ISO-8601 in UTC with
** microseconds for output; ISO-8601 forms, integer microseconds and
** durations (7d, 12h) for input.
*/
#include <string.h>
#include <time.h>

#include "cli.h"

int64_t cli_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool cli_time_format(int64_t us, char out[CLI_TIME_CAP]) {
  int64_t secs = us / 1000000, frac = us % 1000000;
  if (frac < 0) {   /* before 1970: floor, so the fraction counts up */
    frac += 1000000;
    secs -= 1;
  }
  time_t t = (time_t)secs;
  struct tm tm;
  if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) return false;
  snprintf(out, CLI_TIME_CAP, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
  return true;
}

/* [-]digits: microseconds. */
static bool parse_int_us(const char *s, int64_t *out) {
  bool neg = *s == '-';
  if (neg) s++;
  if (!*s) return false;
  int64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (v > (INT64_MAX - (*s - '0')) / 10) return false;
    v = v * 10 + (*s - '0');
  }
  *out = neg ? -v : v;
  return true;
}

/* Integer microseconds, or a time as the library parses it for the SQL
** extension too (klevdb_parse_time). */
int cli_time_parse(const char *s, int64_t *us) {
  if (parse_int_us(s, us)) return 0;
  return klevdb_parse_time(s, strlen(s), us);
}

int cli_duration_parse(const char *s, int64_t *us) {
  static const struct {
    const char *unit;
    int64_t us;
  } units[] = {
      /* Longer names first: "ms" is not "m" followed by junk. */
      {"ms", 1000}, {"us", 1}, {"w", 7 * 86400 * INT64_C(1000000)},
      {"d", 86400 * INT64_C(1000000)}, {"h", 3600 * INT64_C(1000000)},
      {"m", 60 * INT64_C(1000000)}, {"s", 1000000},
  };
  int64_t total = 0;
  const char *p = s;
  if (!*p) return -1;
  while (*p) {
    const char *start = p;
    int64_t v = 0;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
      if (v > (INT64_MAX - (*p - '0')) / 10) return -1;
      v = v * 10 + (*p - '0');
    }
    int64_t mult = 0;
    if (!*p && start == s) {
      mult = 1000000;   /* a plain number: seconds */
    } else {
      for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !mult; i++) {
        size_t l = strlen(units[i].unit);
        if (strncmp(p, units[i].unit, l) == 0) {
          mult = units[i].us;
          p += l;
        }
      }
      if (!mult) return -1;
    }
    if (v > (INT64_MAX - total) / mult) return -1;
    total += v * mult;
  }
  *us = total;
  return 0;
}
