/*
** parse.c - times and sizes as people type them, parsed once for the SQL
** extension (klevdb_time(), rollover='64 KB') and the tool (--time,
** --size), so that both take the same spellings.
*/
#include <strings.h>

#include "kdb.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
** days_from_civil): no time zone or libc table is involved. */
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

/* Exactly k digits at s[*i]. */
static bool digits(const char *s, size_t n, size_t *i, int k, int *out) {
  int v = 0;
  if (n - *i < (size_t)k) return false;
  for (int j = 0; j < k; j++) {
    char ch = s[*i + (size_t)j];
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  *i += (size_t)k;
  *out = v;
  return true;
}

static bool expect(const char *s, size_t n, size_t *i, char ch) {
  if (*i >= n || s[*i] != ch) return false;
  (*i)++;
  return true;
}

int klevdb_parse_time(const char *s, size_t n, int64_t *us) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, zsign = 0;
  int64_t frac = 0;
  size_t i = 0;

  if (!s || !us) return -1;
  if (!digits(s, n, &i, 4, &y) || !expect(s, n, &i, '-') || !digits(s, n, &i, 2, &mo) ||
      !expect(s, n, &i, '-') || !digits(s, n, &i, 2, &d))
    return -1;
  if (i < n) {
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return -1;
    i++;
    if (!digits(s, n, &i, 2, &h) || !expect(s, n, &i, ':') || !digits(s, n, &i, 2, &mi))
      return -1;
    if (i < n && s[i] == ':') {
      i++;
      if (!digits(s, n, &i, 2, &sec)) return -1;
      /* ISO-8601 allows a comma as well as a point before the fraction. */
      if (i < n && (s[i] == '.' || s[i] == ',')) {
        /* Up to nanoseconds; digits past the microsecond are dropped,
        ** which floors since the fraction only ever adds. */
        int k = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
          if (k >= 9) return -1;
          if (k < 6) frac = frac * 10 + (s[i] - '0');
        }
        if (k == 0) return -1;
        for (; k < 6; k++) frac *= 10;
      }
    }
    if (i < n) {
      if (s[i] == 'Z' || s[i] == 'z') {
        i++;
      } else if (s[i] == '+' || s[i] == '-') {
        zsign = s[i] == '-' ? -1 : 1;
        i++;
        if (!digits(s, n, &i, 2, &zh) || !expect(s, n, &i, ':') || !digits(s, n, &i, 2, &zm))
          return -1;
      } else {
        return -1;
      }
    }
    if (i != n) return -1;
  }
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
      sec > 59 || zh > 23 || zm > 59)
    return -2;
  *us = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) -
         zsign * (zh * 3600 + zm * 60)) * 1000000 + frac;
  return 0;
}

static bool blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int klevdb_parse_size(const char *s, size_t n, int64_t *bytes) {
  /* Binary units: segment sizes are thought of in powers of two, as Go
  ** klevdb's defaults are. */
  static const struct {
    const char *unit;
    unsigned shift;
  } units[] = {
      {"", 0},   {"b", 0},   {"k", 10},  {"kb", 10}, {"kib", 10}, {"m", 20},  {"mb", 20},
      {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40},
  };
  if (!s || !bytes) return -1;
  size_t i = 0;
  uint64_t v = 0;
  if (n == 0 || s[0] < '0' || s[0] > '9') return -1;
  /* More digits than any size has: not a size at all. */
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[i] - '0')) / 10) return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  while (i < n && blank(s[i])) i++;
  size_t rest = n - i;
  for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
    if (strlen(units[u].unit) != rest || strncasecmp(s + i, units[u].unit, rest) != 0) continue;
    if (v > ((uint64_t)INT64_MAX >> units[u].shift)) return -2;
    *bytes = (int64_t)(v << units[u].shift);
    return 0;
  }
  return -1;
}
