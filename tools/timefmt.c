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

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
** days_from_civil), so that no time zone or libc table is involved. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) return 29;
  return dm[m - 1];
}

/* Exactly k digits at *p. */
static bool digits(const char **p, int k, int *out) {
  int v = 0;
  for (int i = 0; i < k; i++) {
    char ch = (*p)[i];
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *p += k;
  *out = v;
  return true;
}

static bool expect(const char **p, char ch) {
  if (**p != ch) return false;
  (*p)++;
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

/* YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]][Z|z|+HH:MM|-HH:MM]], the forms
** the SQL extension takes too; digits past the microsecond are dropped. */
int cli_time_parse(const char *s, int64_t *us) {
  int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, zsign = 0;
  int64_t frac = 0;
  const char *p = s;

  if (parse_int_us(s, us)) return 0;
  if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) ||
      !expect(&p, '-') || !digits(&p, 2, &d))
    return -1;
  if (*p) {
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi)) return -1;
    if (*p == ':') {
      p++;
      if (!digits(&p, 2, &sec)) return -1;
      if (*p == '.' || *p == ',') {
        int k = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, k++) {
          if (k >= 9) return -1;
          if (k < 6) frac = frac * 10 + (*p - '0');
        }
        if (k == 0) return -1;
        for (; k < 6; k++) frac *= 10;
      }
    }
    if (*p == 'Z' || *p == 'z') {
      p++;
    } else if (*p == '+' || *p == '-') {
      zsign = *p == '-' ? -1 : 1;
      p++;
      if (!digits(&p, 2, &zh) || !expect(&p, ':') || !digits(&p, 2, &zm)) return -1;
    }
    if (*p) return -1;
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
      mi > 59 || sec > 59 || zh > 23 || zm > 59)
    return -2;
  *us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
         zsign * (zh * 3600 + zm * 60)) * 1000000 + frac;
  return 0;
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
