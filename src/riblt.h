/*
 * riblt.h -- rateless invertible Bloom lookup tables: the set reconciliation
 * anti-entropy uses to find the items two replicas do not share, at a cost
 * that grows with the number of differences d, not with the number of items
 * (Yang, Gilad and Alizadeh, "Practical Rateless Set Reconciliation",
 * SIGCOMM 2024).
 *
 * ITEMS AND SYMBOLS
 *   An item is 128 bits: a key hash and an object hash (aaetree.h says how
 *   they are computed).  Its checksum is SipHash-2-4 of its 16 bytes
 *   (keyhash, then objhash, each little-endian) under the fixed key
 *   RIBLT_CHECKSUM_KEY, the ASCII bytes "dynkv riblt sum1".  The key is part
 *   of the protocol: both sides must agree on it, so it never changes.
 *
 *   A coded symbol holds, over the items mapped to it, the XOR of the items
 *   (16 bytes), the XOR of their checksums and a signed count.  An encoder
 *   turns a set into an endless stream of symbols 0, 1, 2, ...; each item is
 *   mapped to symbol 0 and then to symbol j with probability about
 *   1 / (1 + j/2) (the paper's density, alpha = 0.5), so symbol j holds
 *   about 2n / (j + 2) of the n items.
 *
 * THE MAPPING (part of the protocol: both sides must compute the same)
 *   An item's indices are i0 = 0 < i1 < i2 < ..., drawn from a splitmix64
 *   generator seeded with the item's checksum.  From index i the next is
 *       i + max(1, ceil((i + 1.5) * (1 / sqrt(u) - 1)))
 *   where u = ((r >> 11) + 1) / 2^53, in (0, 1], and r is the generator's
 *   next output.  Why: for density rho(j) = 2 / (j + 2) the chance that an
 *   item at i skips the next g indices is the product over k = 1..g of
 *   (1 - rho(i + k)) = (i + 1)(i + 2) / ((i + g + 1)(i + g + 2)), about
 *   ((i + 1.5) / (i + 1.5 + g))^2; setting that to u and solving for g
 *   gives the formula (inverse-transform sampling; the paper's section 4.2
 *   and its reference code do the same).  The arithmetic is IEEE-754
 *   double with correctly rounded sqrt and division (x86-64 SSE2, aarch64);
 *   never build this file with -ffast-math or for x87.  The golden indices
 *   in tests/unit/test_riblt.c pin the sequence.
 *
 * RECONCILING
 *   Side A encodes its set into symbols a[0..m), side B its own into
 *   b[0..m).  riblt_symbols_subtract() gives a[j] - b[j] (XORs cancel the
 *   shared items; counts subtract): the symbols of the difference alone, an
 *   item only in A counted +1, one only in B counted -1.  The decoder
 *   peels: a symbol of count +-1 whose checksum is the checksum of its item
 *   XOR holds exactly one item; it is recovered and removed from every
 *   symbol it maps to, which may make others pure in turn.  Decoding is
 *   complete when every symbol is zero.  A key whose object differs counts
 *   twice: (k, o1) only in A and (k, o2) only in B.
 *
 *   Symbols needed: about 1.35 d for large d (the paper), more for small d
 *   (but 1 for d = 1: symbol 0 alone is pure).  tests/unit/test_riblt.c
 *   measures the mean symbols / d among 100,000 items, over 100, 2000, 400,
 *   50 and 10 seeded trials, and asserts it stays under 1.8:
 *       d       1     10     100    1000   10000
 *       m/d   1.00   1.72   1.45   1.38   1.36
 *   The worst mean is 1.77, near d = 5 (20,000 trials each for d = 2..10:
 *   1.59, 1.71, 1.76, 1.76, 1.77, 1.74 at 8, 1.72 at 10).  The tail is
 *   long: two items stay tangled until an index maps one and not the other,
 *   which past index j happens with probability falling as j^-4, so one
 *   trial in thousands needs 5 to 10 d.  A fixed budget of symbols would
 *   fail now and then; a rateless exchange just sends more.
 *
 * THE WIRE (a run of symbols; version 1; all integers little-endian)
 *       byte    version = 1
 *       varint  first index of the run
 *       varint  n, the number of symbols (0..max)
 *       n times: 8 bytes XOR of keyhashes, 8 bytes XOR of objhashes,
 *                8 bytes XOR of checksums, zigzag varint count
 *   A varint is unsigned LEB128 (7 bits a byte, low first), at most 10
 *   bytes, in its shortest form only; the zigzag of c is
 *   (c << 1) ^ (c >> 63).  So a symbol takes 24 bytes plus 1 to 10 for its
 *   count.  A sender's own symbol j counts about 2n / (j + 2) items: among
 *   n = 1M items, 3 bytes for j < 120, 2 bytes below j = 16,000 and 1 byte
 *   after: about 26 bytes a symbol, so with 1.35 to 1.8 symbols per
 *   differing item, 35 to 47 bytes per item, 70 to 94 per key whose object
 *   differs.  1,000 differing items among 1M: about 1,400 symbols, whose
 *   run takes 36,645 bytes (26.2 a symbol; measured by the suite).
 *   riblt_run_decode() refuses, without crashing and before allocating
 *   more than the input justifies:
 *       DKV_EVERSION  a first byte other than 1;
 *       DKV_ETOOBIG   n above the caller's max;
 *       DKV_EPROTO    truncation, trailing bytes, a varint too long, not in
 *                     its shortest form or past 64 bits, first + n past
 *                     2^64.
 *
 * RATELESS USE
 *   The encoder keeps, per item, its generator and next index, so it can go
 *   on producing symbols m, m + 1, ... later without redoing the first ones;
 *   the decoder keeps the items it has recovered with their generators, so
 *   symbols can be fed to it as they arrive and it says when it is done.
 *   One round trip: B streams symbols in batches until A has decoded, or
 *   A asks for as many as its estimate (from the two roots' counts, say).
 *
 * HOSTILE INPUT
 *   Symbols from a peer can be anything.  The decoder never loops forever
 *   or grows without bound: an item recovered from symbol j must map to j
 *   (an honest symbol can only be pure with an item that maps to it), and
 *   no more items are recovered than there are symbols (an honest symbol is
 *   the pure source of at most one item: once its last item is peeled it
 *   stays zero).  Breaking either is DKV_ECORRUPT, and the decoder then
 *   refuses everything until freed.  A peer can of course lie about its
 *   set; that is not this module's problem.  Counts wrap modulo 2^64.
 *
 * COSTS
 *   Encoder: 40 bytes per item (item, checksum, generator, next index).
 *   riblt_encoder_produce() of symbols [m0, m1) visits every item once plus
 *   once per mapping into the batch: the first m symbols cost n items times
 *   about 1 + 2 ln((m + 2) / 2) mappings (14 for m = 2,000), so produce in
 *   batches (doubling, say), not one symbol at a time.  Decoder: 32 bytes a
 *   symbol, 72 per recovered item (item, checksum, generator and direction
 *   48, heap slot 8, result 16); feeding it one symbol at a time is cheap
 *   (its recovered items sit in a heap by next index).
 *
 * THREADS AND OWNERSHIP
 *   Pure computation on memory: no I/O, no globals, no locks.  An encoder or
 *   decoder is used by one thread at a time; distinct ones from any thread.
 *   Each is created by its _new() and freed by its _free(); arrays passed
 *   in are borrowed for the call.
 */
#ifndef DKV_RIBLT_H
#define DKV_RIBLT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The SipHash-2-4 key of item checksums (16 ASCII bytes; see above). */
#define RIBLT_CHECKSUM_KEY "dynkv riblt sum1"

/* The first byte of an encoded run. */
#define RIBLT_RUN_VERSION 1

/* Bytes of one symbol on the wire: 24 fixed plus a 1..10 byte count. */
#define RIBLT_SYMBOL_FIXED_BYTES 24u
#define RIBLT_SYMBOL_MAX_BYTES   34u
#define RIBLT_SYMBOL_MIN_BYTES   25u

/* A suggested max for riblt_run_decode(): 131,072 symbols, at most
 * 131,072 * 34 bytes = 4.25 MiB (half the default 8 MiB frame), enough for
 * about 90,000 differing items in one run. */
#define RIBLT_RUN_MAX_SYMBOLS 131072u

/* An index no item maps to: where a generator that would pass 2^63 stops. */
#define RIBLT_INDEX_NONE UINT64_MAX

/* One item of a set. */
typedef struct riblt_item {
	uint64_t keyhash;   /* aaetree_keyhash() of the key */
	uint64_t objhash;   /* aaetree_objhash() of the stored object */
} riblt_item;

/* One coded symbol. */
typedef struct riblt_symbol {
	riblt_item sum;     /* XOR of the items mapped here */
	uint64_t check;     /* XOR of their checksums */
	int64_t count;      /* items added minus items subtracted (wraps) */
} riblt_symbol;

/* The checksum of an item: SipHash-2-4 under RIBLT_CHECKSUM_KEY. */
uint64_t riblt_item_checksum(const riblt_item *item);

/* True iff s is all zero (no item, or items that cancelled). */
bool riblt_symbol_is_zero(const riblt_symbol *s);

/* a[j] -= b[j] for j < n: XOR the sums and checksums, subtract the
 * counts. */
void riblt_symbols_subtract(riblt_symbol *a, const riblt_symbol *b, size_t n);

/* --- mapping -------------------------------------------------------------- */

/* An item's position in its sequence of indices.  Exposed for tests and for
 * callers that generate symbols themselves. */
typedef struct riblt_map {
	uint64_t prng;      /* splitmix64 state, seeded with the checksum */
	uint64_t next;      /* the next index the item maps to */
} riblt_map;

/* The generator of an item with this checksum, at index 0. */
void riblt_map_init(riblt_map *m, uint64_t check);
/* Move to the item's next index (RIBLT_INDEX_NONE stays there). */
void riblt_map_advance(riblt_map *m);

/* --- encoder -------------------------------------------------------------- */

typedef struct riblt_encoder riblt_encoder;

/* A new empty encoder; caller frees with riblt_encoder_free().  0 or
 * -ENOMEM. */
int riblt_encoder_new(riblt_encoder **out);
void riblt_encoder_free(riblt_encoder *e);

/* Room for n items in all without reallocating.  0 or -ENOMEM. */
int riblt_encoder_reserve(riblt_encoder *e, size_t n);

/* Add an item.  Items are a set: add each once (an item added twice is
 * counted twice and its XORs cancel).  Items come first: after the first
 * riblt_encoder_produce() this is DKV_EINVAL.  0, -ENOMEM or DKV_EINVAL. */
int riblt_encoder_add(riblt_encoder *e, const riblt_item *item);

/* Items added. */
size_t riblt_encoder_items(const riblt_encoder *e);
/* Symbols produced so far: the next riblt_encoder_produce() starts there. */
uint64_t riblt_encoder_produced(const riblt_encoder *e);

/* Write the next n symbols [produced, produced + n) to out[0..n).  0, or
 * DKV_EINVAL if the indices would pass 2^63 (out untouched). */
int riblt_encoder_produce(riblt_encoder *e, riblt_symbol *out, size_t n);

/* --- decoder -------------------------------------------------------------- */

typedef struct riblt_decoder riblt_decoder;

/* A new decoder with no symbols; caller frees with riblt_decoder_free().
 * 0 or -ENOMEM. */
int riblt_decoder_new(riblt_decoder **out);
void riblt_decoder_free(riblt_decoder *d);

/* Append the next n difference symbols (A's minus B's, indices
 * [symbols, symbols + n)) and peel what they allow.  0, -ENOMEM,
 * DKV_ECORRUPT (see HOSTILE INPUT), or DKV_EINVAL if the indices would pass
 * 2^63 (nothing added); after -ENOMEM or DKV_ECORRUPT every later call
 * returns the same error. */
int riblt_decoder_add(riblt_decoder *d, const riblt_symbol *diff, size_t n);

/* True iff at least one symbol was added and every symbol is zero after
 * peeling: the items returned are the whole difference. */
bool riblt_decoder_done(const riblt_decoder *d);

/* Symbols added so far. */
uint64_t riblt_decoder_symbols(const riblt_decoder *d);

/* The items recovered so far that are only in A (count +1), and only in B
 * (count -1), in the order recovered; *n gets their number.  Borrowed
 * until the next riblt_decoder_add() or riblt_decoder_free(). */
const riblt_item *riblt_decoder_only_a(const riblt_decoder *d, size_t *n);
const riblt_item *riblt_decoder_only_b(const riblt_decoder *d, size_t *n);

/* --- the wire ------------------------------------------------------------- */

/* Bytes riblt_run_encode() writes for this run. */
size_t riblt_run_size(uint64_t first, const riblt_symbol *syms, size_t n);

/* Write the run of n symbols starting at index `first` to buf, which must
 * hold riblt_run_size() bytes; returns that size. */
size_t riblt_run_encode(uint8_t *buf, uint64_t first, const riblt_symbol *syms, size_t n);

/* Decode a run of len bytes at buf holding at most max symbols.  On success
 * *first is its first index and *out an array of *n symbols the caller
 * frees with free() (NULL when *n is 0); on error *out is NULL and *n 0.
 * 0, -ENOMEM, DKV_EVERSION, DKV_ETOOBIG or DKV_EPROTO (see THE WIRE). */
int riblt_run_decode(const void *buf, size_t len, size_t max, uint64_t *first,
		     riblt_symbol **out, size_t *n);

#endif /* DKV_RIBLT_H */
