/* Included by lda_local.c with REAL (float or double) and NAME(x) defined. */

/* e_k = max(exp(ψ(g_k) - ψ(Σ_j g_j)), floor), the floor applied to the exponent (lda._floored_exp). */
static void NAME(expectation)(const REAL *g, REAL *e, int64_t K, double log_floor) {
    double total = 0.0;
    for (int64_t k = 0; k < K; k++) total += g[k];
    const double psi_total = elbo_digamma(total);
#pragma omp simd
    for (int64_t k = 0; k < K; k++) {
        const double v = elbo_digamma(g[k]) - psi_total;
        e[k] = (REAL)elbo_exp(v < log_floor ? log_floor : v);  /* a NaN stays NaN, as in torch's clamp_min */
    }
}

/* ε + Σ_k e_k b_k: the normaliser of φ at one place of a document. */
static REAL NAME(norm)(const REAL *e, const REAL *b, int64_t K, REAL eps) {
    REAL dot = 0;
#pragma omp simd reduction(+:dot)
    for (int64_t k = 0; k < K; k++) dot += e[k] * b[k];
    return dot + eps;
}

/* acc_k += Σ_j n_j b_jk / norm_j over a document's places j in [first, last): four places at a time, so that four
 * dot products run side by side instead of waiting on one another. */
static void NAME(accumulate)(const REAL *e, const REAL *beta_t, const int64_t *ids, const REAL *counts,
                             int64_t first, int64_t last, int64_t K, REAL eps, REAL *acc) {
    int64_t j = first;
    for (; j + 4 <= last; j += 4) {
        const REAL *b0 = beta_t + ids[j] * K, *b1 = beta_t + ids[j + 1] * K, *b2 = beta_t + ids[j + 2] * K,
                   *b3 = beta_t + ids[j + 3] * K;
        REAL d0 = 0, d1 = 0, d2 = 0, d3 = 0;
#pragma omp simd reduction(+:d0, d1, d2, d3)
        for (int64_t k = 0; k < K; k++) {
            d0 += e[k] * b0[k];
            d1 += e[k] * b1[k];
            d2 += e[k] * b2[k];
            d3 += e[k] * b3[k];
        }
        const REAL c0 = counts[j] / (d0 + eps), c1 = counts[j + 1] / (d1 + eps), c2 = counts[j + 2] / (d2 + eps),
                   c3 = counts[j + 3] / (d3 + eps);
#pragma omp simd
        for (int64_t k = 0; k < K; k++) acc[k] += ((c0 * b0[k] + c1 * b1[k]) + (c2 * b2[k] + c3 * b3[k]));
    }
    for (; j < last; j++) {
        const REAL *b = beta_t + ids[j] * K;
        const REAL c = counts[j] / NAME(norm)(e, b, K, eps);
#pragma omp simd
        for (int64_t k = 0; k < K; k++) acc[k] += c * b[k];
    }
}

/* Documents first..last-1 of a CSR minibatch (offsets, ids, counts), topics beta_t (V, K) already floored, γ
 * (B, K) in place from its initial value, exp(E[log θ]) (B, K) and the weights n_dw / norm_dw (nnz,) written;
 * acc is scratch of K values. Returns the number of updates made, summed over the documents. */
int64_t NAME(elbo_lda_local_step)(int64_t first, int64_t last, int64_t K, const int64_t *offsets,
                                  const int64_t *ids, const REAL *counts, const REAL *beta_t, double alpha,
                                  int64_t max_iter, double tol, double log_floor, double eps, REAL *gamma,
                                  REAL *etheta, REAL *weights, REAL *acc) {
    int64_t updates = 0;
    const REAL eps_r = (REAL)eps, alpha_r = (REAL)alpha;
    for (int64_t d = first; d < last; d++) {
        REAL *g = gamma + d * K, *e = etheta + d * K;
        NAME(expectation)(g, e, K, log_floor);
        for (int64_t iteration = 0; iteration < max_iter; iteration++) {
            for (int64_t k = 0; k < K; k++) acc[k] = 0;
            NAME(accumulate)(e, beta_t, ids, counts, offsets[d], offsets[d + 1], K, eps_r, acc);
            double change = 0.0;
            for (int64_t k = 0; k < K; k++) {
                const REAL updated = alpha_r + e[k] * acc[k];
                change += fabs((double)(updated - g[k]));
                g[k] = updated;
            }
            NAME(expectation)(g, e, K, log_floor);
            updates++;
            if (!(change / (double)K >= tol)) break;  /* scikit-learn's mean_change; a NaN stops too */
        }
        for (int64_t j = offsets[d]; j < offsets[d + 1]; j++)
            weights[j] = counts[j] / NAME(norm)(e, beta_t + ids[j] * K, K, eps_r);
    }
    return updates;
}
