/* backend.c - choosing and creating a backend; loading the CUDA module with dlopen.
 *
 * libvox_cuda.so is looked up, in order: $VOX_CUDA_LIB, next to the running executable,
 * then the dynamic linker's search path. A handle that loads stays loaded for the life of
 * the process (unloading CUDA runtimes at exit is a known source of crashes). */
#include "vox_backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vox_device_parse(const char *s, vox_device *out, vox_error *err) {
    if (s && strcmp(s, "auto") == 0) *out = VOX_DEVICE_AUTO;
    else if (s && strcmp(s, "cpu") == 0) *out = VOX_DEVICE_CPU;
    else if (s && strcmp(s, "cuda") == 0) *out = VOX_DEVICE_CUDA;
    else
        return vox_set_error(err, VOX_ERR_ARG, "unknown device '%s' (expected auto, cpu or cuda)",
                             s ? s : "(null)");
    return VOX_OK;
}

static void *open_cuda_module(char *why, size_t why_len) {
    const char *env = getenv("VOX_CUDA_LIB");
    if (env && *env) {
        void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!h) snprintf(why, why_len, "cannot load %.200s: %.250s", env, dlerror());
        return h;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            char path[PATH_MAX + 32];
            slash[1] = '\0';
            snprintf(path, sizeof path, "%slibvox_cuda.so", exe);
            if (access(path, F_OK) == 0) {
                void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (!h) snprintf(why, why_len, "cannot load %.200s: %.250s", path, dlerror());
                return h;
            }
        }
    }
    void *h = dlopen("libvox_cuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        snprintf(why, why_len,
                 "libvox_cuda.so not found (this build has no CUDA backend, or set VOX_CUDA_LIB)");
    return h;
}

static vox_backend *create_cuda(vox_error *err) {
    char why[VOX_ERROR_MSG_LEN] = "";
    void *h = open_cuda_module(why, sizeof why);
    if (!h) {
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: %s", why);
        return NULL;
    }
    vox_cuda_create_fn create;
    *(void **)&create = dlsym(h, VOX_CUDA_ENTRY_NAME);
    if (!create) {
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: libvox_cuda.so lacks %s",
                      VOX_CUDA_ENTRY_NAME);
        return NULL;
    }
    int dev = 0;
    const char *env = getenv("VOX_CUDA_DEVICE");
    if (env && *env) dev = atoi(env);
    return create(dev, err);
}

vox_backend *vox_backend_create(vox_device dev, int n_threads, vox_log_level log, vox_error *err) {
    if (dev == VOX_DEVICE_CPU) return vox_cpu_backend_create(n_threads, err);
    if (dev == VOX_DEVICE_CUDA) return create_cuda(err);
    vox_error cuda_err = {0};
    vox_backend *be = create_cuda(&cuda_err);
    if (be) return be;
    if (log != VOX_LOG_QUIET) fprintf(stderr, "vox: %s; using the CPU\n", cuda_err.msg);
    return vox_cpu_backend_create(n_threads, err);
}

void vox_backend_destroy(vox_backend *be) {
    if (be && be->ops && be->ops->destroy) be->ops->destroy(be);
}
