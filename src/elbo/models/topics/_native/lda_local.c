/* The local (E-) step of LDA by coordinate ascent, one document at a time: the same updates, stopping rule and
 * floors as elbo.models.topics.lda.local_step's tensor code (see there for the maths), without its per-operation
 * overhead. Compiled on first use by elbo.models.topics.native and called through ctypes, which releases the GIL,
 * so that threads can each take a block of a minibatch's documents.
 *
 * The body is lda_local_body.h, included once per floating-point type: REAL is the type of the tensors, and
 * NAME(x) the function's name with the type's suffix. Sums (a document's Σ_k γ_dk and mean change) are taken in
 * double; ψ, log and exp are computed in double for both types. */

#include <math.h>
#include <stdint.h>

/* ψ, log and exp in double, branch-free so that a loop over a document's K topics runs in SIMD lanes (libm's are
 * scalar, and took most of the time). Each is within a few units of the last place of libm's on the range the
 * local step uses (tests/test_topics_native.py holds them to torch's), and passes a NaN through. */

typedef union {
    double d;
    uint64_t u;
} elbo_bits;

static inline double bits_to_double(uint64_t u) { return ((elbo_bits){.u = u}).d; }

static inline uint64_t double_to_bits(double d) { return ((elbo_bits){.d = d}).u; }

/* log x for a normal x > 0: x = 2^e m with m in [√½, √2), log m = 2 atanh(s) = 2 (s + s³/3 + ...), s = (m-1)/(m+1),
 * |s| ≤ 0.1716, to s^23 (the next term is below 1e-18 of the sum). */
static inline double elbo_log(double x) {
    const uint64_t u = double_to_bits(x);
    double e = (double)((int64_t)((u >> 52) & 0x7ff) - 1023);
    double m = bits_to_double((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    const int big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    e = big ? e + 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    const double series = 1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 * (1.0 / 11
                          + s2 * (1.0 / 13 + s2 * (1.0 / 15 + s2 * (1.0 / 17 + s2 * (1.0 / 19 + s2 * (1.0 / 21
                          + s2 * (1.0 / 23)))))))))));
    const double result = e * 0.6931471805599453 + (e * 2.3190468138462996e-17 + 2.0 * s * series);
    return x == x && x < 1.0 / 0.0 ? result : x;
}

/* exp v for v in [-700, 700]: v = n ln 2 + r with |r| ≤ ln2 / 2 (ln 2 in two parts, n ln2_hi exact), e^r by its series to r^13,
 * 2^n from n's bits. n is rounded by adding and taking away 1.5 · 2^52, which leaves n + 0x4338000000000000 in the
 * sum's bits: no floor and no conversion to an integer, neither of which the compiler puts in SIMD lanes. */
static inline double elbo_exp(double v) {
    const double magic = 6755399441055744.0, shifted = v * 1.4426950408889634 + magic, n = shifted - magic;
    const double r = (v - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;  /* fdlibm's split */
    const double series = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120
                          + r * (1.0 / 720 + r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880
                          + r * (1.0 / 3628800 + r * (1.0 / 39916800 + r * (1.0 / 479001600
                          + r * (1.0 / 6227020800.0)))))))))))));
    const double scale = bits_to_double((double_to_bits(shifted) - 0x4338000000000000ULL + 1023) << 52);
    return v == v ? series * scale : v;
}

/* ψ(x) for x > 0: ψ(x) = ψ(x + 10) - Σ_{i<10} 1/(x + i), and at y = x + 10 ≥ 10 the asymptotic series
 * ψ(y) ~ ln y - 1/(2y) - Σ_n B_2n / (2n y^2n) to n = 7 (its next term is below 5e-17). The sum is one fraction
 * N / D, D = Π (x + i), built a factor at a time from positive terms (no cancellation) and divided once; past
 * x = 1e29, where D would overflow, it is 10 / x to float64 rounding. */
#define ELBO_FACTOR(i) (numerator = numerator * (x + i) + denominator, denominator *= x + i)
static inline double elbo_digamma(double x) {
    double numerator = 1.0, denominator = x;
    ELBO_FACTOR(1), ELBO_FACTOR(2), ELBO_FACTOR(3), ELBO_FACTOR(4), ELBO_FACTOR(5);
    ELBO_FACTOR(6), ELBO_FACTOR(7), ELBO_FACTOR(8), ELBO_FACTOR(9);
    const double shift = x < 1e29 ? numerator / denominator : 10.0 / x;
    const double y = x + 10.0, f = 1.0 / (y * y);
    const double series = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132
                          + f * (691.0 / 32760 + f * (-1.0 / 12)))))));
    return elbo_log(y) - 0.5 / y + series - shift;
}

/* for the tests */
double elbo_digamma_f64(double x) { return elbo_digamma(x); }
double elbo_log_f64(double x) { return elbo_log(x); }
double elbo_exp_f64(double x) { return elbo_exp(x); }

#define REAL double
#define NAME(x) x##_f64
#include "lda_local_body.h"
#undef REAL
#undef NAME

#define REAL float
#define NAME(x) x##_f32
#include "lda_local_body.h"
#undef REAL
#undef NAME
