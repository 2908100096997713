/* pool.c - a fixed pthread pool for the CPU backend (see vox_cpu.h).
 *
 * The calling thread is worker 0; threads 1..n-1 are created once and wait for work. A job is
 * published by bumping `generation` under the mutex; each worker runs fn once and the caller
 * waits until `pending` drops to zero. Workers spin briefly on the generation counter before
 * blocking, because the token loop issues hundreds of short jobs per step and a condition
 * variable wake-up alone costs tens of microseconds. Ownership: the pool owns its threads;
 * vox_pool_destroy joins them. One job at a time: vox_pool_run is not reentrant and must be
 * called from one thread at a time (the backend that owns the pool). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "vox_cpu.h"

#define POOL_SPIN 20000 /* polls of the generation counter before a worker blocks */

struct vox_pool {
    int n;                 /* workers including the caller */
    pthread_t *threads;    /* [n - 1] */
    pthread_mutex_t mu;
    pthread_cond_t wake;   /* workers wait for a new generation */
    pthread_cond_t done;   /* the caller waits for pending == 0 */
    atomic_uint generation;
    atomic_int pending;
    int quit;
    vox_pool_fn fn;
    void *ctx;
};

typedef struct {
    vox_pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *varg) {
    worker_arg *arg = varg;
    vox_pool *p = arg->pool;
    int me = arg->index;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spin = 0; g == seen && spin < POOL_SPIN; spin++) {
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
            g = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !p->quit)
                pthread_cond_wait(&p->wake, &p->mu);
            g = atomic_load(&p->generation);
            int quit = p->quit;
            pthread_mutex_unlock(&p->mu);
            if (quit && g == seen) return NULL;
        }
        seen = g;
        if (p->quit) return NULL;
        p->fn(p->ctx, me, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

vox_pool *vox_pool_create(int n_threads, vox_error *err) {
    if (n_threads < 1) n_threads = 1;
    vox_pool *p = calloc(1, sizeof *p);
    if (!p) {
        vox_set_error(err, VOX_ERR_NOMEM, "thread pool: out of memory");
        return NULL;
    }
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            vox_pool_destroy(p);
            vox_set_error(err, VOX_ERR_NOMEM, "thread pool: out of memory");
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->pool = p;
        a->index = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, a) != 0) {
            free(a);
            break;
        }
        p->n = i + 1;
    }
    if (p->n != n_threads) {
        int got = p->n;
        vox_pool_destroy(p);
        vox_set_error(err, VOX_ERR_NOMEM, "thread pool: could start only %d of %d threads", got,
                      n_threads);
        return NULL;
    }
    return p;
}

void vox_pool_run(vox_pool *p, vox_pool_fn fn, void *ctx) {
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    /* spin a little on the others, then block */
    for (int spin = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0 &&
                       spin < POOL_SPIN;
         spin++) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

int vox_pool_size(const vox_pool *p) { return p ? p->n : 0; }

void vox_pool_destroy(vox_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}
