/* C kernels of host/feed/fastbook.py: the same L3 book, on the same numpy arrays.
 *
 * This file is a transliteration of the numba kernels in host/feed/fastbook_jit.py (read that
 * file's comments for the data structures; the two must stay step for step the same, and
 * tests/host/feed/test_fastbook_c.py compares their traces, anomalies and raw table contents).
 * Python owns every array; a kernel returns a status and a resume point whenever a table must
 * grow *before* it changes anything for the current message, and Python grows it and calls
 * again. No message length, field offset or type code is written here: Python passes the
 * framing table (type -> length) and the field table (type -> offset, width of each record
 * field the book reads), both derived from host.feed.spec and host.feed.record_map.
 *
 * Built by host/feed/fastbook.py with the system C compiler into build/fastbook/<hash>/ and
 * loaded with ctypes; it is never linked against Python. Every read of the input is bounded
 * by the buffer length, whatever the bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FB_ABI 1

enum { DONE = 0, GROW_ORDERS = 1, GROW_POOL = 2, GROW_OUT = 3 };
/* anomaly indices, in host.feed.book.ANOMALY_KINDS order (checked from Python) */
enum { UNKNOWN_REF, DUP_ADD, OVER_EXEC, OVER_CANCEL, REPL_UNKNOWN, REPL_DUP, LOC_MISMATCH,
       BAD_SIDE };
/* framing counters, in host.feed.bulk._scan order */
enum { C_FRAMED, C_GOOD, C_UNKNOWN, C_BADLEN, C_ZERO, C_TRUNC, C_END };
/* record fields the book reads, in the order of the field table */
enum { F_LOCATE, F_TS, F_REF, F_NREF, F_SIDE, F_SHARES, F_PRICE, N_FIELDS };

#define INIT_LEVELS 8
#define PREFETCH_AHEAD 16 /* messages between a prefetch and the probe it is for */
#define ASK_FLIP 0xFFFFFFFFLL
#define MUL 0x9E3779B97F4A7C15ULL

/* one row of host.feed.book.BBO_DTYPE (aligned numpy layout, 56 bytes) */
typedef struct {
    int64_t msg_index;
    uint64_t ts_event;
    uint16_t locate;
    uint32_t bid_px;
    uint64_t bid_sz;
    uint32_t bid_ct;
    uint32_t ask_px;
    uint64_t ask_sz;
    uint32_t ask_ct;
} bbo_row;
_Static_assert(sizeof(bbo_row) == 56, "BBO_DTYPE layout");
_Static_assert(offsetof(bbo_row, bid_px) == 20 && offsetof(bbo_row, ask_ct) == 48, "BBO_DTYPE");

/* the book: pointers into FastBook's numpy arrays (mirrored by fastbook._Book in ctypes) */
typedef struct {
    uint64_t *okey;
    int64_t *odat; /* [cap][3]: 1 + 2*locate + side (0 = empty); price; shares */
    int64_t ocap;
    uint64_t shift;
    int64_t *state; /* live orders, pool used, rows written */
    int64_t *boff, *blen, *bcap;
    int64_t *lkey, *lsz, *lct;
    int64_t pool;
    const uint8_t *locmask;
    int64_t *anom;
    bbo_row *out;
    int64_t out_cap;
} fb_book;

/* one decoded message: what a host.feed.bulk record holds for the fields the book reads */
typedef struct {
    int t;
    uint64_t loc, ts, ref, nref, side, shares, price;
    int64_t midx;
} fb_msg;

int fb_abi_version(void) { return FB_ABI; }

static inline int64_t home(uint64_t r, uint64_t shift) { return (int64_t)((r * MUL) >> shift); }

void fb_rehash(const uint64_t *okey, const int64_t *odat, int64_t cap, uint64_t *nkey,
               int64_t *ndat, int64_t ncap, uint64_t nshift) {
    int64_t mask = ncap - 1;
    for (int64_t i = 0; i < cap; i++) {
        if (odat[3 * i] != 0) {
            int64_t j = home(okey[i], nshift);
            while (ndat[3 * j] != 0) j = (j + 1) & mask;
            nkey[j] = okey[i];
            ndat[3 * j] = odat[3 * i];
            ndat[3 * j + 1] = odat[3 * i + 1];
            ndat[3 * j + 2] = odat[3 * i + 2];
        }
    }
}

int64_t fb_compact(int64_t nbooks, int64_t *boff, int64_t *blen, int64_t *bcap,
                   const int64_t *lkey, const int64_t *lsz, const int64_t *lct, int64_t *nkey,
                   int64_t *nsz, int64_t *nct) {
    int64_t used = 0;
    for (int64_t b = 0; b < nbooks; b++) {
        if (bcap[b] == 0) continue;
        int64_t off = boff[b], n = 0;
        for (int64_t p = 0; p < blen[b]; p++) { /* live levels only: placeholders dropped */
            if (lct[off + p] != 0) {
                nkey[used + n] = lkey[off + p];
                nsz[used + n] = lsz[off + p];
                nct[used + n] = lct[off + p];
                n++;
            }
        }
        int64_t cap = INIT_LEVELS;
        while (cap < 2 * n) cap *= 2;
        blen[b] = n;
        boff[b] = used;
        bcap[b] = cap;
        used += cap;
    }
    return used;
}

/* Apply one message (fastbook_jit._kernel's loop body). Returns DONE or the growth that must
 * happen first (nothing changed then). *nout is the row count, written back by the caller. */
static inline int apply(fb_book *s, const fb_msg *m, int64_t *nout) {
    uint64_t *okey = s->okey;
    int64_t *odat = s->odat, *boff = s->boff, *blen = s->blen, *bcap = s->bcap;
    int64_t *lkey = s->lkey, *lsz = s->lsz, *lct = s->lct, *anom = s->anom;
    int64_t mask = s->ocap - 1, limit = s->ocap / 2;
    uint64_t shift = s->shift;
    int t = m->t;
    int do_add = 0, do_red = 0, dup = 0, rm = 0;
    int64_t q = 0, a_px = 0, a_sh = 0, L = 0, sd = 0, j = 0, k;
    uint64_t a_ref = 0;

    if (t == 'A' || t == 'F') {
        if (m->side == 'B') sd = 0;
        else if (m->side == 'S') sd = 1;
        else { anom[BAD_SIDE]++; return DONE; }
        uint64_t r = m->ref;
        j = home(r, shift);
        while (odat[3 * j] != 0 && okey[j] != r) j = (j + 1) & mask;
        if (odat[3 * j] != 0) { anom[DUP_ADD]++; return DONE; }
        L = (int64_t)m->loc;
        do_add = 1;
        a_ref = r;
        a_px = (int64_t)m->price;
        a_sh = (int64_t)m->shares;
    } else if (t == 'E' || t == 'C' || t == 'X' || t == 'D' || t == 'U') {
        uint64_t r = m->ref;
        j = home(r, shift);
        while (odat[3 * j] != 0 && okey[j] != r) j = (j + 1) & mask;
        if (odat[3 * j] == 0) {
            if (t == 'U') anom[REPL_UNKNOWN]++;
            else anom[UNKNOWN_REF]++;
            return DONE;
        }
        int64_t meta = odat[3 * j] - 1;
        L = meta >> 1;
        sd = meta & 1;
        do_red = 1;
        if (t == 'U') {
            a_ref = m->nref;
            int64_t jn = home(a_ref, shift);
            while (odat[3 * jn] != 0 && okey[jn] != a_ref) jn = (jn + 1) & mask;
            dup = odat[3 * jn] != 0;
            do_add = !dup;
            a_px = (int64_t)m->price;
            a_sh = (int64_t)m->shares;
        }
    } else {
        return DONE;
    }
    int64_t b = 2 * L + sd;

    /* room: order table at most half full, one free level in book b */
    if (do_add) {
        if (s->state[0] + 1 > limit) return GROW_ORDERS;
        if (blen[b] == bcap[b] && bcap[b] > 0) {
            /* full run: drop its empty levels in place first (the top one is never empty) */
            int64_t off = boff[b], w = 0;
            for (int64_t p = 0; p < blen[b]; p++) {
                if (lct[off + p] != 0) {
                    lkey[off + w] = lkey[off + p];
                    lsz[off + w] = lsz[off + p];
                    lct[off + w] = lct[off + p];
                    w++;
                }
            }
            blen[b] = w;
        }
        if (blen[b] == bcap[b]) {
            int64_t ncap = 2 * bcap[b] > INIT_LEVELS ? 2 * bcap[b] : INIT_LEVELS;
            int64_t used = s->state[1];
            if (used + ncap > s->pool) return GROW_POOL;
            int64_t off = boff[b];
            for (int64_t p = 0; p < blen[b]; p++) {
                lkey[used + p] = lkey[off + p];
                lsz[used + p] = lsz[off + p];
                lct[used + p] = lct[off + p];
            }
            boff[b] = used;
            bcap[b] = ncap;
            s->state[1] = used + ncap;
        }
    }

    /* anomalies (only now: a message resumed after growth must not count twice) */
    if (do_red) {
        if (L != (int64_t)m->loc) anom[LOC_MISMATCH]++;
        int64_t sh = odat[3 * j + 2];
        if (t == 'D' || t == 'U') {
            rm = 1;
            q = sh;
            if (dup) anom[REPL_DUP]++;
        } else {
            q = (int64_t)m->shares;
            if (q >= sh) {
                if (q > sh) {
                    if (t == 'X') anom[OVER_CANCEL]++;
                    else anom[OVER_EXEC]++;
                }
                rm = 1;
                q = sh;
            }
        }
    }

    /* snapshot the top of book b */
    int64_t off = boff[b], nb = blen[b], k0, s0, c0;
    if (nb > 0) {
        k0 = lkey[off + nb - 1];
        s0 = lsz[off + nb - 1];
        c0 = lct[off + nb - 1];
    } else {
        k0 = -1;
        s0 = 0;
        c0 = 0;
    }

    if (do_red) {
        int64_t px = odat[3 * j + 1];
        k = sd == 0 ? px : ASK_FLIP - px;
        int64_t lo = 0, hi = nb - 1; /* binary search: the level exists (its order is live) */
        while (lo < hi) {
            int64_t mid = (lo + hi) >> 1;
            if (lkey[off + mid] < k) lo = mid + 1;
            else hi = mid;
        }
        int64_t p = lo;
        lsz[off + p] -= q;
        if (rm) {
            lct[off + p] -= 1;
            if (lct[off + p] == 0 && p == nb - 1) {
                /* the top emptied: pop it and every empty level under it */
                nb -= 1;
                while (nb > 0 && lct[off + nb - 1] == 0) nb -= 1;
                blen[b] = nb;
            }
            /* backward-shift deletion of slot j (no tombstones) */
            int64_t e = j, g = j;
            for (;;) {
                g = (g + 1) & mask;
                if (odat[3 * g] == 0) break;
                int64_t h = home(okey[g], shift);
                /* leave g alone when its home lies cyclically in (e, g] */
                if (e <= g) {
                    if (e < h && h <= g) continue;
                } else if (h <= g || h > e) {
                    continue;
                }
                okey[e] = okey[g];
                odat[3 * e] = odat[3 * g];
                odat[3 * e + 1] = odat[3 * g + 1];
                odat[3 * e + 2] = odat[3 * g + 2];
                e = g;
            }
            odat[3 * e] = 0;
            s->state[0] -= 1;
        } else {
            odat[3 * j + 2] -= q;
        }
    }

    if (do_add) {
        k = sd == 0 ? a_px : ASK_FLIP - a_px;
        int64_t lo = 0, hi = nb; /* lower bound: first position whose key is >= k */
        while (lo < hi) {
            int64_t mid = (lo + hi) >> 1;
            if (lkey[off + mid] < k) lo = mid + 1;
            else hi = mid;
        }
        int64_t p = lo;
        if (p < nb && lkey[off + p] == k) { /* the level (or its empty placeholder) */
            lsz[off + p] += a_sh;
            lct[off + p] += 1;
        } else {
            /* open a slot at p by shifting toward the nearest empty placeholder, or toward
             * the top when that is nearer: cost = distance, not book depth */
            for (int64_t d = 0;; d++) {
                int64_t up = p + d, dn = p - 1 - d;
                if (up == nb || lct[off + up] == 0) { /* the top end, or a placeholder above */
                    for (int64_t w = up; w > p; w--) {
                        lkey[off + w] = lkey[off + w - 1];
                        lsz[off + w] = lsz[off + w - 1];
                        lct[off + w] = lct[off + w - 1];
                    }
                    if (up == nb) {
                        nb += 1;
                        blen[b] = nb;
                    }
                    break;
                }
                if (dn >= 0 && lct[off + dn] == 0) {
                    for (int64_t w = dn; w < p - 1; w++) {
                        lkey[off + w] = lkey[off + w + 1];
                        lsz[off + w] = lsz[off + w + 1];
                        lct[off + w] = lct[off + w + 1];
                    }
                    p -= 1;
                    break;
                }
            }
            lkey[off + p] = k;
            lsz[off + p] = a_sh;
            lct[off + p] = 1;
        }
        int64_t g = home(a_ref, shift);
        while (odat[3 * g] != 0) g = (g + 1) & mask;
        okey[g] = a_ref;
        odat[3 * g] = 1 + 2 * L + sd;
        odat[3 * g + 1] = a_px;
        odat[3 * g + 2] = a_sh;
        s->state[0] += 1;
    }

    int changed;
    if (nb > 0)
        changed = lkey[off + nb - 1] != k0 || lsz[off + nb - 1] != s0 || lct[off + nb - 1] != c0;
    else
        changed = k0 != -1;
    if (changed && s->locmask[L]) {
        bbo_row *o = &s->out[*nout];
        o->msg_index = m->midx;
        o->ts_event = m->ts;
        o->locate = (uint16_t)L;
        int64_t bb = 2 * L, ob = boff[bb], n = blen[bb];
        if (n > 0) {
            o->bid_px = (uint32_t)lkey[ob + n - 1];
            o->bid_sz = (uint64_t)lsz[ob + n - 1];
            o->bid_ct = (uint32_t)lct[ob + n - 1];
        } else {
            o->bid_px = 0;
            o->bid_sz = 0;
            o->bid_ct = 0;
        }
        ob = boff[bb + 1];
        n = blen[bb + 1];
        if (n > 0) {
            o->ask_px = (uint32_t)(ASK_FLIP - lkey[ob + n - 1]);
            o->ask_sz = (uint64_t)lsz[ob + n - 1];
            o->ask_ct = (uint32_t)lct[ob + n - 1];
        } else {
            o->ask_px = 0;
            o->ask_sz = 0;
            o->ask_ct = 0;
        }
        *nout += 1;
    }
    return DONE;
}

/* Records (host.feed.bulk.RECORD_DTYPE columns) from index *start; *start is the resume
 * index on return. Column pointers are contiguous arrays of the record field types. */
int fb_feed_records(fb_book *s, int64_t n, const uint8_t *mt, const uint16_t *loc,
                    const uint64_t *ts, const uint64_t *ref, const uint64_t *nref,
                    const uint8_t *side, const uint32_t *shares, const uint32_t *price,
                    const int64_t *midx, int64_t *start) {
    int64_t nout = s->state[2];
    for (int64_t i = *start; i < n; i++) {
        if (nout >= s->out_cap) {
            s->state[2] = nout;
            *start = i;
            return GROW_OUT;
        }
        if (i + PREFETCH_AHEAD < n) { /* see fb_feed_bytes */
            int64_t h = home(ref[i + PREFETCH_AHEAD], s->shift);
            __builtin_prefetch(&s->odat[3 * h]);
            __builtin_prefetch(&s->okey[h]);
        }
        fb_msg m = {mt[i], loc[i], ts[i], ref[i], nref[i], side[i], shares[i], price[i], midx[i]};
        int st = apply(s, &m, &nout);
        if (st != DONE) {
            s->state[2] = nout;
            *start = i;
            return st;
        }
    }
    s->state[2] = nout;
    *start = n;
    return DONE;
}

static inline uint64_t be(const uint8_t *p, int32_t w) {
    uint64_t v = 0;
    for (int32_t k = 0; k < w; k++) v = (v << 8) | p[k];
    return v;
}

/* Walk the framing of buf[0:n] once (host.feed.bulk._scan): counters c[7], per_type[256]. */
void fb_scan(const uint8_t *buf, int64_t n, const int64_t *type_len, int64_t *c,
             int64_t *per_type) {
    int64_t pos = 0;
    while (pos < n) {
        if (pos + 2 > n) { c[C_TRUNC]++; break; }
        int64_t ln = ((int64_t)buf[pos] << 8) | buf[pos + 1];
        if (ln == 0) { c[C_ZERO]++; break; }
        int64_t body = pos + 2;
        if (body + ln > n) { c[C_TRUNC]++; break; }
        int t = buf[body];
        int64_t tl = type_len[t];
        c[C_FRAMED]++;
        if (tl == 0) c[C_UNKNOWN]++;
        else if (ln < tl) c[C_BADLEN]++;
        else { c[C_GOOD]++; per_type[t]++; }
        pos = body + ln;
    }
    c[C_END] = pos;
}

/* Locate and the raw 8-byte field at stock_off of every whole message of type code in
 * buf[0:n] (the stock directory, R), at most max; returns how many. */
int64_t fb_directory(const uint8_t *buf, int64_t n, const int64_t *type_len, int code,
                     int32_t loc_off, int32_t loc_w, int32_t stock_off, int64_t *out_loc,
                     uint8_t *out_stock, int64_t max) {
    int64_t pos = 0, k = 0;
    while (pos + 2 <= n && k < max) {
        int64_t ln = ((int64_t)buf[pos] << 8) | buf[pos + 1];
        int64_t body = pos + 2;
        if (ln == 0 || body + ln > n) break;
        int t = buf[body];
        if (t == code && type_len[t] != 0 && ln >= type_len[t]) {
            out_loc[k] = (int64_t)be(buf + body + loc_off, loc_w);
            memcpy(out_stock + 8 * k, buf + body + stock_off, 8);
            k++;
        }
        pos = body + ln;
    }
    return k;
}

/* Parse and apply the messages of buf[0:n] from byte pos[0] (message index pos[1]); both are
 * the resume point on return. type_len[256] is the framing table, field[N_FIELDS][256][2] the
 * (offset, width) of each record field per type (width 0: the type does not carry it). The
 * walk stops where host.feed.bulk._scan stops (zero length, truncation). */
static inline int book_type(int t) {
    return t == 'A' || t == 'F' || t == 'E' || t == 'C' || t == 'X' || t == 'D' || t == 'U';
}

#define FIELD_AT(body, t, f) \
    be((body) + field[((f) * 256 + (t)) * 2], field[((f) * 256 + (t)) * 2 + 1])

int fb_feed_bytes(fb_book *s, const uint8_t *buf, int64_t n, const int64_t *type_len,
                  const int32_t *field, int64_t *pos) {
    int64_t nout = s->state[2];
    int64_t p = pos[0], idx = pos[1];
    /* The order-table probe is a cache miss on a large book (most of the run time): a second
     * walk PREFETCH_AHEAD messages ahead prefetches the home slot of each reference. */
    int64_t pf = p;
    for (int k = 0; k < PREFETCH_AHEAD; k++) {
        if (pf + 2 > n) break;
        int64_t l = ((int64_t)buf[pf] << 8) | buf[pf + 1];
        if (l == 0 || pf + 2 + l > n) break;
        pf += 2 + l;
    }
#define FIELD(f) FIELD_AT(body, t, f)
    while (p + 2 <= n) {
        int64_t ln = ((int64_t)buf[p] << 8) | buf[p + 1];
        if (ln == 0 || p + 2 + ln > n) break;
        if (pf + 2 <= n) {
            int64_t l = ((int64_t)buf[pf] << 8) | buf[pf + 1];
            if (l != 0 && pf + 2 + l <= n) {
                const uint8_t *b2 = buf + pf + 2;
                int t2 = b2[0];
                if (book_type(t2) && l >= type_len[t2]) {
                    int64_t h = home(FIELD_AT(b2, t2, F_REF), s->shift);
                    __builtin_prefetch(&s->odat[3 * h]);
                    __builtin_prefetch(&s->okey[h]);
                }
                pf += 2 + l;
            } else {
                pf = n;  /* the walk ends there too */
            }
        }
        const uint8_t *body = buf + p + 2;
        int t = body[0];
        int64_t tl = type_len[t];
        if (tl != 0 && ln >= tl && book_type(t)) {
            if (nout >= s->out_cap) {
                s->state[2] = nout;
                pos[0] = p;
                pos[1] = idx;
                return GROW_OUT;
            }
            fb_msg m = {t, FIELD(F_LOCATE), FIELD(F_TS), FIELD(F_REF), FIELD(F_NREF),
                        FIELD(F_SIDE), FIELD(F_SHARES), FIELD(F_PRICE), idx};
            int st = apply(s, &m, &nout);
            if (st != DONE) {
                s->state[2] = nout;
                pos[0] = p;
                pos[1] = idx;
                return st;
            }
        }
        idx++;
        p += 2 + ln;
    }
#undef FIELD
    s->state[2] = nout;
    pos[0] = p;
    pos[1] = idx;
    return DONE;
}

static inline uint8_t *put_u64(uint8_t *o, uint64_t v) {
    uint8_t d[20];
    int nd = 0;
    do {
        d[nd++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd) *o++ = d[--nd];
    return o;
}

static inline uint8_t *put_i64(uint8_t *o, int64_t v) {
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(o, (uint64_t)v);
}

/* CSV text of n BBO rows (then k extra int64 columns, row-major extra[n][k]) into out, which
 * holds at least n * (9 + k) * 21 bytes; returns the bytes written. */
int64_t fb_csv(const bbo_row *rows, int64_t n, const int64_t *extra, int64_t k, uint8_t *out) {
    uint8_t *o = out;
    for (int64_t i = 0; i < n; i++) {
        const bbo_row *r = &rows[i];
        o = put_i64(o, r->msg_index); *o++ = ',';
        o = put_u64(o, r->ts_event); *o++ = ',';
        o = put_u64(o, r->locate); *o++ = ',';
        o = put_u64(o, r->bid_px); *o++ = ',';
        o = put_u64(o, r->bid_sz); *o++ = ',';
        o = put_u64(o, r->bid_ct); *o++ = ',';
        o = put_u64(o, r->ask_px); *o++ = ',';
        o = put_u64(o, r->ask_sz); *o++ = ',';
        o = put_u64(o, r->ask_ct);
        for (int64_t c = 0; c < k; c++) {
            *o++ = ',';
            o = put_i64(o, extra[i * k + c]);
        }
        *o++ = '\n';
    }
    return o - out;
}
