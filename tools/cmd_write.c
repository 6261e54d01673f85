/*
** cmd_write.c - `klevdb publish`: stdin, one message per line (a value, or
** a JSON object), published in batches that are sent as soon as the input
** pauses, so that a slow producer's messages do not wait for a full batch.
*/
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define BATCH_LINES 1000
#define BATCH_BYTES (1 << 20)

/* ---- stdin, line by line ---- */

typedef struct lines {
  int fd;
  char *buf;
  size_t start, end, cap;
  size_t scan;        /* no '\n' in [start, scan) */
  bool eof;
  int64_t no;         /* number of the line last returned */
} lines;

/* The next line, without its '\n', valid until the next call; a last line
** without '\n' counts. 1, 0 at the end, -1 on a read error (errno). */
static int lines_next(lines *l, const char **line, size_t *len) {
  for (;;) {
    char *nl = l->end > l->scan ? memchr(l->buf + l->scan, '\n', l->end - l->scan) : NULL;
    if (nl || (l->eof && l->start < l->end)) {
      size_t stop = nl ? (size_t)(nl - l->buf) : l->end;
      *line = l->buf + l->start;
      *len = stop - l->start;
      l->start = l->scan = nl ? stop + 1 : stop;
      l->no++;
      return 1;
    }
    l->scan = l->end;
    if (l->eof) return 0;
    if (l->start > 0) {
      memmove(l->buf, l->buf + l->start, l->end - l->start);
      l->end -= l->start;
      l->scan -= l->start;
      l->start = 0;
    }
    if (l->end == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 1 << 16;
      char *b = realloc(l->buf, cap);
      if (!b) {
        errno = ENOMEM;
        return -1;
      }
      l->buf = b;
      l->cap = cap;
    }
    ssize_t r = read(l->fd, l->buf + l->end, l->cap - l->end);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) l->eof = true;
    l->end += (size_t)r;
  }
}

/* True when the next line can be had without waiting for the producer. */
static bool lines_ready(const lines *l) {
  if (l->eof || (l->end > l->scan && memchr(l->buf + l->scan, '\n', l->end - l->scan)))
    return true;
  struct pollfd pfd = {l->fd, POLLIN, 0};
  return poll(&pfd, 1, 0) != 0;
}

/* ---- the batch ---- */

typedef struct pub {
  cli_ctx *c;
  klevdb *db;
  const char *defkey;     /* --key */
  cli_buf bytes;          /* keys and values of the batch */
  cli_jmsg *msgs;
  size_t n;
  klevdb_msg *out;
  int64_t first, next, count;
} pub;

/* Publishes the batch: all of it or, on an error, none of it. */
static int pub_flush(pub *p) {
  if (p->n == 0) return CLI_OK;
  for (size_t i = 0; i < p->n; i++) {
    const cli_jmsg *j = &p->msgs[i];
    klevdb_msg *m = &p->out[i];
    memset(m, 0, sizeof(*m));
    m->time = j->has_time ? j->time : KLEVDB_TIME_UNSET;
    /* Zero-length bytes stay NULL: the buffer may not exist yet. */
    if (j->has_key) {
      m->key = j->key_len ? p->bytes.p + j->key_pos : NULL;
      m->key_len = j->key_len;
    } else if (p->defkey) {
      m->key = (const uint8_t *)p->defkey;
      m->key_len = strlen(p->defkey);
    }
    if (j->has_value) {
      m->value = j->value_len ? p->bytes.p + j->value_pos : NULL;
      m->value_len = j->value_len;
    }
  }
  int64_t next;
  klevdb_err rc = klevdb_publish(p->db, p->out, p->n, &next);
  if (rc) return cli_core_error(rc, klevdb_errmsg(p->db));
  if (p->first < 0) p->first = next - (int64_t)p->n;
  p->count += (int64_t)p->n;
  p->next = next;
  p->n = 0;
  p->bytes.len = 0;
  return CLI_OK;
}

/* Parses one input line into the batch. */
static int pub_add(pub *p, bool json, const char *line, size_t len, int64_t no) {
  cli_jmsg *m = &p->msgs[p->n];
  if (json) {
    char err[200];
    int r = cli_jsonl_parse(line, len, &p->bytes, m, err, sizeof(err));
    if (r == -2) return cli_error(p->c, CLI_FAIL, "out of memory");
    if (r) return cli_error(p->c, CLI_USAGE, "stdin line %" PRId64 ": %s", no, err);
  } else {
    memset(m, 0, sizeof(*m));
    if (cli_buf_reserve(&p->bytes, len)) return cli_error(p->c, CLI_FAIL, "out of memory");
    m->has_value = true;
    m->value_pos = p->bytes.len;
    m->value_len = len;
    if (len) memcpy(p->bytes.p + p->bytes.len, line, len);
    p->bytes.len += len;
  }
  size_t klen = m->has_key ? m->key_len : p->defkey ? strlen(p->defkey) : 0;
  if (klen + (m->has_value ? m->value_len : 0) > KLEVDB_MAX_PAYLOAD)
    return cli_error(p->c, CLI_USAGE, "stdin line %" PRId64 ": key and value over %d bytes",
                     no, KLEVDB_MAX_PAYLOAD);
  p->n++;
  return CLI_OK;
}

static void pub_summary(const pub *p) {
  if (p->c->json) {
    printf("{\"published\":%" PRId64, p->count);
    if (p->count) {
      printf(",\"first_offset\":%" PRId64 ",\"last_offset\":%" PRId64 ",\"next_offset\":%" PRId64
             "}\n",
             p->first, p->next - 1, p->next);
    } else {
      printf(",\"first_offset\":null,\"last_offset\":null,\"next_offset\":null}\n");
    }
  }
  if (p->c->quiet) return;
  if (p->count)
    fprintf(stderr, "published %" PRId64 " message%s, offsets %" PRId64 "..%" PRId64 "\n",
            p->count, p->count == 1 ? "" : "s", p->first, p->next - 1);
  else
    fprintf(stderr, "published 0 messages\n");
}

/* Whether dir already holds a store (any segment). */
static bool has_segments(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return false;
  bool found = false;
  struct dirent *de;
  while (!found && (de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    found = l > 4 && strcmp(de->d_name + l - 4, ".log") == 0;
  }
  closedir(d);
  return found;
}

/* The options of the store: a new one as asked, an existing one as its
** files say (asking otherwise is a mistake worth stopping for). */
static int store_options(cli_ctx *c, const char *dir, bool no_keys, bool no_times,
                         klevdb_options *o) {
  klevdb_dir_indexes(dir, &o->key_index, &o->time_index);
  if (!has_segments(dir)) {
    o->key_index = !no_keys;
    o->time_index = !no_times;
    return CLI_OK;
  }
  if (no_keys && o->key_index)
    return cli_usage(c, "%s has a key index; --no-key-index is for new stores", dir);
  if (no_times && o->time_index)
    return cli_usage(c, "%s has a time index; --no-time-index is for new stores", dir);
  return CLI_OK;
}

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
  return true;
}

static int publish_stream(pub *p, bool json) {
  lines in = {0};
  in.fd = STDIN_FILENO;
  int rc = CLI_OK;
  for (;;) {
    /* Whatever came in goes out before we wait for more. */
    if (p->n && !lines_ready(&in) && (rc = pub_flush(p))) break;
    const char *line;
    size_t len;
    int r = lines_next(&in, &line, &len);
    if (r < 0) {
      rc = cli_error(p->c, CLI_FAIL, "read stdin: %s", strerror(errno));
      break;
    }
    if (r == 0) break;
    /* Blank lines separate nothing in JSON lines; as values they are
    ** messages without a value. */
    if (json && blank(line, len)) continue;
    if ((rc = pub_add(p, json, line, len, in.no))) break;
    if ((p->n >= BATCH_LINES || p->bytes.len >= BATCH_BYTES) && (rc = pub_flush(p))) break;
  }
  /* The lines before a bad one are published; the message said which. */
  if (rc == CLI_OK || rc == CLI_USAGE) {
    int frc = pub_flush(p);
    if (rc == CLI_OK) rc = frc;
  }
  free(in.buf);
  return rc;
}

int cli_cmd_publish(cli_ctx *c, int argc, char **argv) {
  static const struct option longopts[] = {
      {"key", required_argument, 0, 'k'},     {"input", required_argument, 0, 'i'},
      {"rollover", required_argument, 0, 'r'}, {"sync", no_argument, 0, 's'},
      {"no-key-index", no_argument, 0, 'K'},  {"no-time-index", no_argument, 0, 'T'},
      CLI_COMMON_OPTIONS};
  const char *key = NULL, *input = NULL, *dir;
  bool no_keys = false, no_times = false;
  klevdb_options o = {0};
  o.create_dirs = 1;
  int ch, rc;
  while ((ch = cli_getopt(c, argc, argv, "", longopts)) != -1) {
    switch (ch) {
    case 'k': key = optarg; break;
    case 'i': input = optarg; break;
    case 'r':
      if ((rc = cli_parse_size(c, "--rollover", optarg, &o.rollover))) return rc;
      if (o.rollover == 0) return cli_usage(c, "--rollover: must be more than 0");
      break;
    case 's': o.auto_sync = 1; break;
    case 'K': no_keys = true; break;
    case 'T': no_times = true; break;
    default: return cli_usage(c, "unknown option");
    }
  }
  if ((rc = cli_operand_dir(c, argc, argv, &dir, NULL))) return rc;
  bool json = c->json;
  if (input && !strcmp(input, "json")) json = true;
  else if (input && !strcmp(input, "lines")) json = false;
  else if (input) return cli_usage(c, "--input: '%s' is not lines or json", input);
  if ((rc = store_options(c, dir, no_keys, no_times, &o))) return rc;
  /* A folder of other files is not made a store too. */
  struct stat ds;
  if (stat(dir, &ds) == 0 && S_ISDIR(ds.st_mode) && (rc = cli_need_store(c, dir))) return rc;

  pub p = {0};
  p.c = c;
  p.defkey = key && *key ? key : NULL;
  p.first = -1;
  p.msgs = malloc(BATCH_LINES * sizeof(*p.msgs));
  p.out = malloc(BATCH_LINES * sizeof(*p.out));
  if (!p.msgs || !p.out) {
    free(p.msgs);
    free(p.out);
    return cli_error(c, CLI_FAIL, "out of memory");
  }
  rc = cli_open(dir, &o, &p.db);
  if (rc == CLI_OK) {
    rc = publish_stream(&p, json);
    klevdb_err crc = klevdb_close(p.db);
    if (crc && rc == CLI_OK) rc = cli_core_error(crc, "klevdb: publish: close failed");
    pub_summary(&p);
  }
  cli_buf_free(&p.bytes);
  free(p.msgs);
  free(p.out);
  return rc;
}
