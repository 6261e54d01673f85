/*
** message.c - the .log record format (docs/format.md): V1 and V2 records,
** the V2 file header and version detection. Pure functions over memory;
** segment.c does the I/O.
*/
#include "kdb.h"

static const uint8_t LOG_MAGIC[6] = {0xFF, 'k', 'l', 'e', 'v', 's'};
static const uint8_t TRAILER[8] = {0xDE, 0xAD, 0xBE, 0xEF, 0xFE, 0xED, 0xFA, 0xCE};

void log_header(uint8_t out[FILE_HDR]) {
  memcpy(out + HDR_MAGIC, LOG_MAGIC, 6);
  out[HDR_VERSION] = 0x01;
  out[HDR_RESERVED] = 0x00;
}

klevdb_err log_detect(const uint8_t *hdr, int64_t size, int64_t base, int *ver,
                      klevdb_error *e) {
  if (size == 0) {
    *ver = FMT_V1;
    return KLEVDB_OK;
  }
  if (size < FILE_HDR)
    return kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: reading header");
  if (memcmp(hdr + HDR_MAGIC, LOG_MAGIC, 6) != 0) {
    if ((int64_t)get_be64(hdr) == base) {
      *ver = FMT_V1;
      return KLEVDB_OK;
    }
    return kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: magic prefix not found");
  }
  if (hdr[HDR_VERSION] > 0x01)
    return kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: unknown version %d", hdr[HDR_VERSION]);
  if (hdr[HDR_RESERVED] != 0)
    return kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: invalid reserved data");
  if (hdr[HDR_VERSION] == 0x01) {
    *ver = FMT_V2;
    return KLEVDB_OK;
  }
  return kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: unknown version 0");
}

klevdb_err msgs_check(const klevdb_msg *msgs, size_t n, size_t *bytes, klevdb_error *e) {
  if (n && !msgs) return kerr(e, KLEVDB_EINVAL, "publish: no messages given");
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    const klevdb_msg *m = &msgs[i];
    if ((m->key_len && !m->key) || (m->value_len && !m->value))
      return kerr(e, KLEVDB_EINVAL, "publish: message %zu has a length but no bytes", i);
    if (m->key_len > KLEVDB_MAX_PAYLOAD || m->value_len > KLEVDB_MAX_PAYLOAD ||
        m->key_len + m->value_len > KLEVDB_MAX_PAYLOAD)
      return kerr(e, KLEVDB_ETOOBIG, "publish: message %zu too big: key + value is %zu bytes, the limit is %d",
                  i, m->key_len + m->value_len, KLEVDB_MAX_PAYLOAD);
    total += (size_t)rec_size(FMT_V2, m->key_len, m->value_len);
  }
  if (bytes) *bytes = total;
  return KLEVDB_OK;
}

/* The two record layouts (docs/format.md, log file), integers big-endian:
**
**   V2  0      4        12       20   24   28      28+K     28+K+V     36+K+V
**       | crc  | offset | time   | K  | V  | key   | value  | DEADBEEF FEEDFACE |
**   V1  0        8      16   20   24    28      28+K     28+K+V
**       | offset | time | K  | V  | crc | key   | value  |
**
** The V2 CRC covers bytes 4 to the end, trailer included; the V1 CRC covers
** key and value only. */
size_t rec_encode(int ver, uint8_t *out, int64_t offset, int64_t time,
                  const uint8_t *key, size_t klen, const uint8_t *val,
                  size_t vlen) {
  uint8_t *h = out;
  if (ver == FMT_V2) {
    uint8_t *f = h + REC2_FIELDS;
    put_be64(f + REC_OFFSET, (uint64_t)offset);
    put_be64(f + REC_TIME, (uint64_t)time);
    put_be32(f + REC_KLEN, (uint32_t)klen);
    put_be32(f + REC_VLEN, (uint32_t)vlen);
    if (klen) memcpy(h + REC_HDR, key, klen);
    if (vlen) memcpy(h + REC_HDR + klen, val, vlen);
    memcpy(h + REC_HDR + klen + vlen, TRAILER, REC_TRAILER);
    size_t len = REC_HDR + klen + vlen + REC_TRAILER;
    put_be32(h + REC2_CRC, crc32c(0, h + REC2_FIELDS, len - REC2_FIELDS));
    return len;
  }
  put_be64(h + REC_OFFSET, (uint64_t)offset);
  put_be64(h + REC_TIME, (uint64_t)time);
  put_be32(h + REC_KLEN, (uint32_t)klen);
  put_be32(h + REC_VLEN, (uint32_t)vlen);
  if (klen) memcpy(h + REC_HDR, key, klen);
  if (vlen) memcpy(h + REC_HDR + klen, val, vlen);
  put_be32(h + REC1_CRC, crc32c(0, h + REC_HDR, klen + vlen));
  return REC_HDR + klen + vlen;
}

int rec_decode(int ver, const uint8_t *p, int64_t avail, bool verify,
               klevdb_msg *m, int64_t *len, klevdb_error *e) {
  if (avail < REC_HDR) return 0;
  const uint8_t *f = ver == FMT_V2 ? p + REC2_FIELDS : p;
  int32_t klen = (int32_t)get_be32(f + REC_KLEN);
  int32_t vlen = (int32_t)get_be32(f + REC_VLEN);
  if (klen < 0 || vlen < 0 || (int64_t)klen + vlen > KLEVDB_MAX_PAYLOAD) {
    kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: invalid header");
    return -1;
  }
  int64_t body = (int64_t)klen + vlen;
  if (ver == FMT_V2) {
    if (avail < REC_HDR + body + REC_TRAILER) {
      kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: short data");
      return -1;
    }
    if (verify) {
      if (get_be32(p + REC2_CRC) !=
          crc32c(0, p + REC2_FIELDS, (size_t)(REC_HDR - REC2_FIELDS + body + REC_TRAILER))) {
        kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: crc failed");
        return -1;
      }
      if (memcmp(p + REC_HDR + body, TRAILER, REC_TRAILER) != 0) {
        kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: bad trailer");
        return -1;
      }
    }
    *len = REC_HDR + body + REC_TRAILER;
  } else {
    if (avail < REC_HDR + body) {
      kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: no message");
      return -1;
    }
    if (verify && get_be32(p + REC1_CRC) != crc32c(0, p + REC_HDR, (size_t)body)) {
      kerr(e, KLEVDB_ECORRUPT_LOG, "log corrupted: crc failed");
      return -1;
    }
    *len = REC_HDR + body;
  }
  m->offset = (int64_t)get_be64(f + REC_OFFSET);
  m->time = (int64_t)get_be64(f + REC_TIME);
  m->key_len = (size_t)klen;
  m->key = klen ? p + REC_HDR : NULL;
  m->value_len = (size_t)vlen;
  m->value = vlen ? p + REC_HDR + klen : NULL;
  return 1;
}
