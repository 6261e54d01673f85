/*
** out.c - everything the tool prints on stdout: messages as text lines or
** JSON objects (keys and values as JSON strings when they are UTF-8, else
** base64), and the name/value records of stat, check and the others.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if there is none:
** overlong forms, surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp) {
  uint8_t b = s[0];
  size_t len;
  uint32_t min, v;
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) len = 2, min = 0x80, v = b & 0x1F;
  else if (b >= 0xE0 && b <= 0xEF) len = 3, min = 0x800, v = b & 0x0F;
  else if (b >= 0xF0 && b <= 0xF4) len = 4, min = 0x10000, v = b & 0x07;
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

bool cli_utf8_valid(const uint8_t *s, size_t n) {
  uint32_t cp;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_seq(s + i, n - i, &cp);
    if (!l) return false;
    i += l;
  }
  return true;
}

/* ---- JSON ---- */

void cli_json_str(FILE *f, const uint8_t *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = s[i];
    switch (ch) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    default:
      if (ch < 0x20) fprintf(f, "\\u%04x", ch);
      else fputc(ch, f);
    }
  }
  fputc('"', f);
}

/* A key or value: null when absent, a string when it is UTF-8, else
** {"base64":"..."}, which publish --json reads back. */
static void json_bytes(FILE *f, const uint8_t *s, size_t n) {
  if (n == 0) {
    fputs("null", f);
    return;
  }
  if (cli_utf8_valid(s, n)) {
    cli_json_str(f, s, n);
    return;
  }
  char *b64 = malloc(4 * ((n + 2) / 3) + 1);
  if (!b64) {
    /* Printing a wrong value would be worse than failing the write. */
    fputs("klevdb: out of memory for a base64 value\n", stderr);
    exit(CLI_FAIL);
  }
  cli_base64_encode(s, n, b64);
  fprintf(f, "{\"base64\":\"%s\"}", b64);
  free(b64);
}

/* ---- text ---- */

/* A key or value on a text line: printable UTF-8 as it is, a backslash
** doubled, anything else (controls, invalid bytes) as \xNN, so that one
** message is always one line; '-' when absent. */
static void text_bytes(FILE *f, const uint8_t *s, size_t n) {
  if (n == 0) {
    fputc('-', f);
    return;
  }
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_seq(s + i, n - i, &cp);
    if (l == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
      size_t bad = l ? l : 1;
      for (size_t k = 0; k < bad; k++) fprintf(f, "\\x%02x", s[i + k]);
      i += bad;
      continue;
    }
    if (cp == '\\') fputs("\\\\", f);
    else fwrite(s + i, 1, l, f);
    i += l;
  }
}

void cli_out_msg(const cli_ctx *c, const klevdb_msg *m) {
  char t[CLI_TIME_CAP];
  bool has_time = cli_time_format(m->time, t);
  if (c->json) {
    printf("{\"offset\":%" PRId64 ",\"time\":", m->offset);
    if (has_time) printf("\"%s\"", t);
    else fputs("null", stdout);
    printf(",\"time_us\":%" PRId64 ",\"key\":", m->time);
    json_bytes(stdout, m->key, m->key_len);
    fputs(",\"value\":", stdout);
    json_bytes(stdout, m->value, m->value_len);
    fputs("}\n", stdout);
    return;
  }
  if (has_time) printf("%" PRId64 "  %s  ", m->offset, t);
  else printf("%" PRId64 "  %" PRId64 "  ", m->offset, m->time);
  text_bytes(stdout, m->key, m->key_len);
  fputs("  ", stdout);
  text_bytes(stdout, m->value, m->value_len);
  fputc('\n', stdout);
}

int cli_out_flush(void) {
  if (fflush(stdout) == 0 && !ferror(stdout)) return CLI_OK;
  if (errno == EPIPE) return CLI_STOP;
  fprintf(stderr, "klevdb: write to stdout: %s\n", strerror(errno));
  return CLI_FAIL;
}

/* ---- name/value records ---- */

void cli_kv_begin(cli_kv *k, const cli_ctx *c) {
  k->c = c;
  k->n = 0;
  if (c->json) fputc('{', stdout);
}

/* Starts a field: the JSON name, or the text label padded to a column. */
static void kv_name(cli_kv *k, const char *name) {
  if (k->c->json) {
    printf("%s\"%s\":", k->n ? "," : "", name);
  } else {
    char label[64];
    size_t i = 0;
    for (; name[i] && i < sizeof(label) - 2; i++) label[i] = name[i] == '_' ? ' ' : name[i];
    label[i++] = ':';
    label[i] = 0;
    printf("%-17s ", label);
  }
  k->n++;
}

static void kv_end_field(cli_kv *k) {
  if (!k->c->json) fputc('\n', stdout);
}

void cli_kv_int(cli_kv *k, const char *name, int64_t v) {
  kv_name(k, name);
  printf("%" PRId64, v);
  kv_end_field(k);
}

void cli_kv_str(cli_kv *k, const char *name, const char *v) {
  kv_name(k, name);
  if (k->c->json) {
    if (v) cli_json_str(stdout, (const uint8_t *)v, strlen(v));
    else fputs("null", stdout);
  } else {
    fputs(v ? v : "-", stdout);
  }
  kv_end_field(k);
}

void cli_kv_bool(cli_kv *k, const char *name, bool v) {
  kv_name(k, name);
  if (k->c->json) fputs(v ? "true" : "false", stdout);
  else fputs(v ? "yes" : "no", stdout);
  kv_end_field(k);
}

void cli_kv_time(cli_kv *k, const char *name, int64_t us, bool absent) {
  char t[CLI_TIME_CAP], name_us[64];
  bool ok = !absent && cli_time_format(us, t);
  if (!k->c->json) {
    if (absent) cli_kv_str(k, name, NULL);
    else if (ok) cli_kv_str(k, name, t);
    else cli_kv_int(k, name, us);
    return;
  }
  cli_kv_str(k, name, ok ? t : NULL);
  snprintf(name_us, sizeof(name_us), "%s_us", name);
  kv_name(k, name_us);
  if (absent) fputs("null", stdout);
  else printf("%" PRId64, us);
}

void cli_kv_raw(cli_kv *k, const char *name, const char *text, const char *json) {
  kv_name(k, name);
  fputs(k->c->json ? json : text, stdout);
  kv_end_field(k);
}

void cli_kv_end(cli_kv *k) {
  if (k->c->json) fputs("}\n", stdout);
}
