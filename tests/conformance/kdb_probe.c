/*
** kdb_probe.c - conformance driver: runs the commands of the Go fixtures
** (tests/conformance/README in conformance.py) against libklevdb and prints
** one JSON object per line in the fixtures' shapes.
**
**   kdb_probe DIR [options] CMD ARGS...
**
** options: --keys --times --readonly --rollover N --v1 --check --recover
**          --count N (dump batch size, default 100)
** CMD:     dump | query FILE | publish INPUT.jsonl BATCH | stat | check |
**          recover | open
**
** Exit status: 0 when every step succeeded, 1 when the command reported an
** error (the error is printed as {"error": msg, "kinds": [name]}), 2 on a
** usage or input problem.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "klevdb.h"

/* ------------------------------------------------------------------ */
/* Output helpers                                                      */

static void put_jstr(const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      putchar('\\');
      putchar(c);
    } else if (c < 0x20 || c == 0x7f) {
      printf("\\u00%c%c", hex[c >> 4], hex[c & 15]);
    } else {
      putchar(c);
    }
  }
  putchar('"');
}

static void put_cstr(const char *s) { put_jstr(s, strlen(s)); }

static const char B64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of buf, or null when len == 0 (absent). */
static void put_b64(const uint8_t *buf, size_t len) {
  if (len == 0) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)buf[i] << 16 | (uint32_t)buf[i + 1] << 8 | buf[i + 2];
    putchar(B64[v >> 18]);
    putchar(B64[(v >> 12) & 63]);
    putchar(B64[(v >> 6) & 63]);
    putchar(B64[v & 63]);
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)buf[i] << 16;
    putchar(B64[v >> 18]);
    putchar(B64[(v >> 12) & 63]);
    fputs("==", stdout);
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)buf[i] << 16 | (uint32_t)buf[i + 1] << 8;
    putchar(B64[v >> 18]);
    putchar(B64[(v >> 12) & 63]);
    putchar(B64[(v >> 6) & 63]);
    putchar('=');
  }
  putchar('"');
}

static int b64val(int c) {
  const char *p = c ? strchr(B64, c) : NULL;
  return p ? (int)(p - B64) : -1;
}

/* Decodes base64 in place-independent: out must hold len*3/4+3 bytes.
** Returns the decoded length or -1. */
static long b64_decode(const char *in, size_t len, uint8_t *out) {
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    if (in[i] == '=') break;
    int v = b64val((unsigned char)in[i]);
    if (v < 0) return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (long)o;
}

static void put_msg(const klevdb_msg *m) {
  printf("{\"offset\":%" PRId64 ",\"time_us\":%" PRId64 ",\"key\":", m->offset, m->time);
  put_b64(m->key, m->key_len);
  fputs(",\"value\":", stdout);
  put_b64(m->value, m->value_len);
  putchar('}');
}

static void put_err(klevdb_err code, const char *msg) {
  fputs("{\"error\":", stdout);
  put_cstr(msg ? msg : "");
  fputs(",\"kinds\":[", stdout);
  put_cstr(klevdb_errname(code));
  fputs("]}", stdout);
}

static void put_db_err(klevdb *db, klevdb_err code) { put_err(code, klevdb_errmsg(db)); }

/* ------------------------------------------------------------------ */
/* A tiny JSON reader for the fixture lines: one object whose members are */
/* strings, numbers, null, or (skipped) nested values.                    */

typedef struct jstr {
  char *s;     /* decoded, NUL-terminated (malloc) or NULL for null */
  size_t len;
} jstr;

static void ws(const char **p) {
  while (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n') (*p)++;
}

/* Parses a JSON string at *p (which points at '"'). Handles the common
** escapes; \uXXXX below 0x80 only (enough for base64 and digits). */
static int jparse_string(const char **p, jstr *out) {
  const char *s = *p;
  if (*s != '"') return -1;
  s++;
  size_t cap = 16, n = 0;
  char *buf = malloc(cap);
  if (!buf) return -1;
  while (*s && *s != '"') {
    char c = *s++;
    if (c == '\\') {
      char e = *s++;
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'u': {
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
          char h = *s++;
          v <<= 4;
          if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
          else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
          else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
          else { free(buf); return -1; }
        }
        if (v >= 0x80) { free(buf); return -1; }
        c = (char)v;
        break;
      }
      case 0: free(buf); return -1;
      default: c = e; break;
      }
    }
    if (n + 2 > cap) {
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) { free(buf); return -1; }
      buf = nb;
    }
    buf[n++] = c;
  }
  if (*s != '"') { free(buf); return -1; }
  buf[n] = 0;
  out->s = buf;
  out->len = n;
  *p = s + 1;
  return 0;
}

static int jskip_value(const char **p) {
  ws(p);
  const char *s = *p;
  if (*s == '"') {
    jstr t;
    if (jparse_string(p, &t)) return -1;
    free(t.s);
    return 0;
  }
  if (*s == '{' || *s == '[') {
    char close = *s == '{' ? '}' : ']';
    (*p)++;
    ws(p);
    if (**p == close) { (*p)++; return 0; }
    for (;;) {
      if (close == '}') {
        jstr k;
        ws(p);
        if (jparse_string(p, &k)) return -1;
        free(k.s);
        ws(p);
        if (**p != ':') return -1;
        (*p)++;
      }
      if (jskip_value(p)) return -1;
      ws(p);
      if (**p == ',') { (*p)++; continue; }
      if (**p == close) { (*p)++; return 0; }
      return -1;
    }
  }
  /* number or literal */
  const char *start = s;
  while (*s && strchr("+-0123456789.eEtruefalsn", *s)) s++;
  if (s == start) return -1;
  *p = s;
  return 0;
}

/* One fixture line, the members we use. */
typedef struct jline {
  jstr cmd;
  jstr args[8];
  int nargs;
  int has_count;
  int64_t count;
  jstr key, value;
  int has_key, has_value;
  int64_t time_us;
  int has_time;
} jline;

static void jline_free(jline *l) {
  free(l->cmd.s);
  for (int i = 0; i < l->nargs; i++) free(l->args[i].s);
  free(l->key.s);
  free(l->value.s);
  memset(l, 0, sizeof(*l));
}

static int jparse_int(const char **p, int64_t *out) {
  ws(p);
  char *end;
  errno = 0;
  long long v = strtoll(*p, &end, 10);
  if (end == *p || errno) return -1;
  *out = v;
  *p = end;
  return 0;
}

/* string or null */
static int jparse_opt_string(const char **p, jstr *out) {
  ws(p);
  if (strncmp(*p, "null", 4) == 0) {
    *p += 4;
    out->s = NULL;
    out->len = 0;
    return 0;
  }
  return jparse_string(p, out);
}

static int jparse_line(const char *line, jline *l) {
  memset(l, 0, sizeof(*l));
  const char *p = line;
  ws(&p);
  if (*p != '{') return -1;
  p++;
  ws(&p);
  if (*p == '}') return 0;
  for (;;) {
    jstr k;
    ws(&p);
    if (jparse_string(&p, &k)) goto bad;
    ws(&p);
    if (*p != ':') { free(k.s); goto bad; }
    p++;
    ws(&p);
    int rc = 0;
    if (strcmp(k.s, "cmd") == 0) {
      free(l->cmd.s);
      rc = jparse_string(&p, &l->cmd);
    } else if (strcmp(k.s, "args") == 0) {
      if (*p != '[') rc = -1;
      else {
        p++;
        ws(&p);
        if (*p == ']') p++;
        else for (;;) {
          ws(&p);
          if (l->nargs >= 8) { rc = -1; break; }
          if (jparse_string(&p, &l->args[l->nargs])) { rc = -1; break; }
          l->nargs++;
          ws(&p);
          if (*p == ',') { p++; continue; }
          if (*p == ']') { p++; break; }
          rc = -1;
          break;
        }
      }
    } else if (strcmp(k.s, "count") == 0) {
      rc = jparse_int(&p, &l->count);
      l->has_count = 1;
    } else if (strcmp(k.s, "time_us") == 0) {
      rc = jparse_int(&p, &l->time_us);
      l->has_time = 1;
    } else if (strcmp(k.s, "key") == 0) {
      free(l->key.s);
      rc = jparse_opt_string(&p, &l->key);
      l->has_key = 1;
    } else if (strcmp(k.s, "value") == 0) {
      free(l->value.s);
      rc = jparse_opt_string(&p, &l->value);
      l->has_value = 1;
    } else {
      rc = jskip_value(&p);
    }
    free(k.s);
    if (rc) goto bad;
    ws(&p);
    if (*p == ',') { p++; continue; }
    if (*p == '}') return 0;
    goto bad;
  }
bad:
  jline_free(l);
  return -1;
}

/* Reads a whole line (any length) into *buf; returns length or -1 at EOF. */
static long read_line(FILE *f, char **buf, size_t *cap) {
  ssize_t n = getline(buf, cap, f);
  if (n < 0) return -1;
  while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r')) (*buf)[--n] = 0;
  return (long)n;
}

/* Decodes a base64 jstr (NULL -> empty) into a malloc'd buffer. */
static uint8_t *b64_jstr(const jstr *s, size_t *len) {
  size_t n = s->s ? s->len : 0;
  uint8_t *out = malloc(n * 3 / 4 + 4);
  if (!out) return NULL;
  long r = n ? b64_decode(s->s, n, out) : 0;
  if (r < 0) { free(out); return NULL; }
  *len = (size_t)r;
  return out;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

static klevdb_options g_opts;
static const char *g_dir;
static size_t g_count = 100;

static klevdb *open_or_print(void) {
  klevdb *db = NULL;
  klevdb_error e;
  memset(&e, 0, sizeof(e));
  klevdb_err rc = klevdb_open(g_dir, &g_opts, &db, &e);
  if (rc != KLEVDB_OK) {
    put_err(rc, e.msg);
    putchar('\n');
    return NULL;
  }
  return db;
}

static int close_db(klevdb *db) {
  klevdb_err rc = klevdb_close(db);
  if (rc != KLEVDB_OK) {
    fprintf(stderr, "kdb_probe: close: %s (%s)\n", klevdb_errname(rc), "close failed");
    return 1;
  }
  return 0;
}

static int cmd_dump(void) {
  klevdb *db = open_or_print();
  if (!db) return 1;
  klevdb_batch b = KLEVDB_BATCH_INIT;
  int64_t cursor = KLEVDB_OFFSET_OLDEST;
  int status = 0;
  for (;;) {
    klevdb_err rc = klevdb_consume(db, cursor, g_count, &b);
    if (rc != KLEVDB_OK) {
      put_db_err(db, rc);
      putchar('\n');
      status = 1;
      break;
    }
    for (size_t i = 0; i < b.len; i++) {
      put_msg(&b.msgs[i]);
      putchar('\n');
    }
    if (b.len == 0 || b.next_offset == cursor) break;
    cursor = b.next_offset;
  }
  klevdb_batch_free(&b);
  if (close_db(db)) status = 1;
  return status;
}

static int parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || errno) return -1;
  *out = v;
  return 0;
}

/* Runs one query line; prints its result line. */
static void run_query(klevdb *db, const jline *q) {
  klevdb_batch b = KLEVDB_BATCH_INIT;
  const char *cmd = q->cmd.s ? q->cmd.s : "";
  klevdb_err rc = KLEVDB_OK;
  enum { R_MSG, R_BATCH, R_NEXT, R_STAT, R_BAD } kind = R_BAD;
  int64_t a = 0, next = 0;
  klevdb_stat st;
  memset(&st, 0, sizeof(st));
  uint8_t *key = NULL;
  size_t key_len = 0;
  size_t count = q->has_count && q->count > 0 ? (size_t)q->count : 1;
  const char *bad = NULL;

  if (strcmp(cmd, "get") == 0 && q->nargs == 1) {
    if (parse_i64(q->args[0].s, &a)) bad = "bad offset";
    else { kind = R_MSG; rc = klevdb_get(db, a, &b); }
  } else if (strcmp(cmd, "getkey") == 0 && q->nargs == 1) {
    if (!(key = b64_jstr(&q->args[0], &key_len))) bad = "bad base64";
    else { kind = R_MSG; rc = klevdb_get_by_key(db, key, key_len, &b); }
  } else if (strcmp(cmd, "gettime") == 0 && q->nargs == 1) {
    if (parse_i64(q->args[0].s, &a)) bad = "bad time";
    else { kind = R_MSG; rc = klevdb_get_by_time(db, a, &b); }
  } else if (strcmp(cmd, "consume") == 0 && q->nargs == 1) {
    if (parse_i64(q->args[0].s, &a)) bad = "bad offset";
    else { kind = R_BATCH; rc = klevdb_consume(db, a, count, &b); }
  } else if (strcmp(cmd, "consume-key") == 0 && q->nargs == 2) {
    if (!(key = b64_jstr(&q->args[0], &key_len))) bad = "bad base64";
    else if (parse_i64(q->args[1].s, &a)) bad = "bad offset";
    else { kind = R_BATCH; rc = klevdb_consume_by_key(db, key, key_len, a, count, &b); }
  } else if (strcmp(cmd, "next-offset") == 0) {
    kind = R_NEXT;
    rc = klevdb_next_offset(db, &next);
  } else if (strcmp(cmd, "log-stat") == 0) {
    kind = R_STAT;
    rc = klevdb_stat_get(db, &st);
  } else {
    bad = "unknown command";
  }

  fputs("{\"cmd\":", stdout);
  put_cstr(cmd);
  fputs(",\"args\":[", stdout);
  for (int i = 0; i < q->nargs; i++) {
    if (i) putchar(',');
    put_jstr(q->args[i].s, q->args[i].len);
  }
  putchar(']');
  if (q->has_count) printf(",\"count\":%" PRId64, q->count);
  if (bad) {
    fputs(",\"rc\":2,\"result\":", stdout);
    put_err(KLEVDB_EINVAL, bad);
  } else if (rc != KLEVDB_OK) {
    fputs(",\"rc\":1,\"result\":", stdout);
    put_db_err(db, rc);
  } else {
    fputs(",\"rc\":0,\"result\":", stdout);
    switch (kind) {
    case R_MSG:
      if (b.len < 1) fputs("{\"probe_error\":\"empty batch\"}", stdout);
      else put_msg(&b.msgs[0]);
      break;
    case R_BATCH:
      fputs("{\"messages\":[", stdout);
      for (size_t i = 0; i < b.len; i++) {
        if (i) putchar(',');
        put_msg(&b.msgs[i]);
      }
      printf("],\"next_offset\":%" PRId64 "}", b.next_offset);
      break;
    case R_NEXT:
      printf("{\"next_offset\":%" PRId64 "}", next);
      break;
    case R_STAT:
      printf("{\"segments\":%" PRId64 ",\"messages\":%" PRId64 ",\"size\":%" PRId64 "}",
             st.segments, st.messages, st.size);
      break;
    case R_BAD:
      break;
    }
  }
  fputs("}\n", stdout);
  free(key);
  klevdb_batch_free(&b);
}

static int cmd_query(const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) {
    fprintf(stderr, "kdb_probe: %s: %s\n", file, strerror(errno));
    return 2;
  }
  klevdb *db = open_or_print();
  if (!db) {
    fclose(f);
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  int status = 0;
  long n;
  while ((n = read_line(f, &line, &cap)) >= 0) {
    if (n == 0) continue;
    jline q;
    if (jparse_line(line, &q)) {
      fprintf(stderr, "kdb_probe: bad query line: %.80s\n", line);
      status = 2;
      break;
    }
    run_query(db, &q);
    fflush(stdout);
    jline_free(&q);
  }
  free(line);
  fclose(f);
  if (close_db(db) && status == 0) status = 1;
  return status;
}

typedef struct inmsg {
  uint8_t *key, *value;
  size_t key_len, value_len;
  int64_t time;
} inmsg;

static int cmd_publish(const char *file, const char *batch_s) {
  int64_t batch;
  if (parse_i64(batch_s, &batch) || batch < 1) {
    fprintf(stderr, "kdb_probe: bad batch size %s\n", batch_s);
    return 2;
  }
  FILE *f = fopen(file, "r");
  if (!f) {
    fprintf(stderr, "kdb_probe: %s: %s\n", file, strerror(errno));
    return 2;
  }
  inmsg *in = NULL;
  size_t nin = 0, capin = 0;
  char *line = NULL;
  size_t cap = 0;
  long n;
  int status = 0;
  while ((n = read_line(f, &line, &cap)) >= 0) {
    if (n == 0) continue;
    jline l;
    if (jparse_line(line, &l)) {
      fprintf(stderr, "kdb_probe: bad input line: %.80s\n", line);
      status = 2;
      break;
    }
    if (nin == capin) {
      capin = capin ? capin * 2 : 256;
      inmsg *ni = realloc(in, capin * sizeof(*in));
      if (!ni) { jline_free(&l); status = 2; break; }
      in = ni;
    }
    inmsg *m = &in[nin];
    memset(m, 0, sizeof(*m));
    m->key = b64_jstr(&l.key, &m->key_len);
    m->value = b64_jstr(&l.value, &m->value_len);
    m->time = l.has_time ? l.time_us : KLEVDB_TIME_UNSET;
    jline_free(&l);
    if (!m->key || !m->value) {
      free(m->key);
      free(m->value);
      fprintf(stderr, "kdb_probe: bad base64 in input\n");
      status = 2;
      break;
    }
    nin++;
  }
  free(line);
  fclose(f);
  if (status == 0) {
    klevdb_options o = g_opts;
    o.create_dirs = 1;
    g_opts = o;
    klevdb *db = open_or_print();
    if (!db) status = 1;
    else {
      klevdb_msg *msgs = calloc((size_t)batch, sizeof(*msgs));
      int64_t next = 0;
      size_t published = 0;
      if (!msgs) status = 2;
      for (size_t i = 0; status == 0 && i < nin; i += (size_t)batch) {
        size_t k = nin - i < (size_t)batch ? nin - i : (size_t)batch;
        for (size_t j = 0; j < k; j++) {
          msgs[j].offset = 0;
          msgs[j].time = in[i + j].time;
          msgs[j].key = in[i + j].key;
          msgs[j].key_len = in[i + j].key_len;
          msgs[j].value = in[i + j].value;
          msgs[j].value_len = in[i + j].value_len;
        }
        klevdb_err rc = klevdb_publish(db, msgs, k, &next);
        if (rc != KLEVDB_OK) {
          put_db_err(db, rc);
          putchar('\n');
          status = 1;
        } else {
          published += k;
        }
      }
      if (status == 0)
        printf("{\"next_offset\":%" PRId64 ",\"published\":%zu}\n", next, published);
      free(msgs);
      if (close_db(db)) status = 1;
    }
  }
  for (size_t i = 0; i < nin; i++) {
    free(in[i].key);
    free(in[i].value);
  }
  free(in);
  return status;
}

static int cmd_dirop(const char *what) {
  klevdb_error e;
  memset(&e, 0, sizeof(e));
  klevdb_err rc;
  klevdb_stat st;
  memset(&st, 0, sizeof(st));
  if (strcmp(what, "stat") == 0) rc = klevdb_dir_stat(g_dir, &g_opts, &st, &e);
  else if (strcmp(what, "check") == 0) rc = klevdb_dir_check(g_dir, &g_opts, &e);
  else rc = klevdb_dir_recover(g_dir, &g_opts, &e);
  if (rc != KLEVDB_OK) {
    put_err(rc, e.msg);
    putchar('\n');
    return 1;
  }
  if (strcmp(what, "stat") == 0)
    printf("{\"segments\":%" PRId64 ",\"messages\":%" PRId64 ",\"size\":%" PRId64 "}\n",
           st.segments, st.messages, st.size);
  else
    fputs("{\"ok\":true}\n", stdout);
  return 0;
}

static int cmd_open(void) {
  klevdb *db = open_or_print();
  if (!db) return 1;
  klevdb_err rc = klevdb_close(db);
  if (rc != KLEVDB_OK) {
    put_err(rc, "close failed");
    putchar('\n');
    return 1;
  }
  fputs("{\"ok\":true}\n", stdout);
  return 0;
}

static int usage(void) {
  fputs("usage: kdb_probe DIR [--keys] [--times] [--readonly] [--rollover N] [--v1]\n"
        "                 [--check] [--recover] [--count N]\n"
        "                 dump | query FILE | publish INPUT.jsonl BATCH |\n"
        "                 stat | check | recover | open\n",
        stderr);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 3) return usage();
  g_dir = argv[1];
  memset(&g_opts, 0, sizeof(g_opts));
  g_opts.new_segments_version = KLEVDB_V2;
  int i = 2;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *o = argv[i];
    int64_t v;
    if (strcmp(o, "--keys") == 0) g_opts.key_index = 1;
    else if (strcmp(o, "--times") == 0) g_opts.time_index = 1;
    else if (strcmp(o, "--readonly") == 0) g_opts.readonly = 1;
    else if (strcmp(o, "--v1") == 0) g_opts.new_segments_version = KLEVDB_V1;
    else if (strcmp(o, "--check") == 0) g_opts.check = 1;
    else if (strcmp(o, "--recover") == 0) g_opts.recover = 1;
    else if (strcmp(o, "--rollover") == 0 && i + 1 < argc && parse_i64(argv[i + 1], &v) == 0) {
      g_opts.rollover = v;
      i++;
    } else if (strcmp(o, "--count") == 0 && i + 1 < argc && parse_i64(argv[i + 1], &v) == 0 &&
               v > 0) {
      g_count = (size_t)v;
      i++;
    } else return usage();
  }
  if (i >= argc) return usage();
  const char *cmd = argv[i++];
  int left = argc - i;
  int rc;
  if (strcmp(cmd, "dump") == 0 && left == 0) rc = cmd_dump();
  else if (strcmp(cmd, "query") == 0 && left == 1) rc = cmd_query(argv[i]);
  else if (strcmp(cmd, "publish") == 0 && left == 2) rc = cmd_publish(argv[i], argv[i + 1]);
  else if ((strcmp(cmd, "stat") == 0 || strcmp(cmd, "check") == 0 ||
            strcmp(cmd, "recover") == 0) && left == 0) rc = cmd_dirop(cmd);
  else if (strcmp(cmd, "open") == 0 && left == 0) rc = cmd_open();
  else return usage();
  fflush(stdout);
  return rc;
}
