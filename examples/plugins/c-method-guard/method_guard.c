/*
 * method-guard: an example s2s-proxy translator plugin in plain C, written against s2s_plugin.h alone.
 *
 * It rejects the calls of denied methods with PERMISSION_DENIED, and stamps a request header on every other call:
 *
 *     plugins:
 *       - name: method-guard                  # libmethod-guard.so, next to s2s-proxy or in S2S_PROXY_PLUGIN_PATH
 *         options:
 *           deny: ["/temporal.api.workflowservice.v1.WorkflowService/DeleteNamespace"]
 *           header: x-s2s-method-guard        # optional; this is the default
 *           value: passed                     # optional; this is the default
 *
 * Build (see README.md): cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -I ../../../s2s-plugin-sdk/Sources/PluginABI/include \
 *                           -o libmethod-guard.so method_guard.c
 *
 * What it shows: the entry point and its version check, options read through the host's option readers (ABI 1.1,
 * no JSON parser here) and validated in config_new with a message that says what to do, a metric defined at config time and recorded per call, reading host structs only as far as their
 * struct_size goes (S2S_HAS_FIELD), and a plugin that wants calls but no messages, so the host never deframes one.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s2s_plugin.h"

#define GRPC_PERMISSION_DENIED 7u
#define GRPC_INTERNAL 13u

/* ---- The config: one per chain entry, immutable after config_new (so every call thread may read it) -------- */

typedef struct text {
    char *data; /* NUL-terminated copy; `len` excludes the NUL */
    size_t len;
} text_t;

typedef struct method_guard {
    const s2s_host_api_t *api;
    s2s_host_t *host;
    text_t *deny;
    size_t deny_count;
    text_t header;
    text_t value;
    uint32_t denied_metric; /* 0 if the host has no metrics */
} method_guard_t;

static void text_free(text_t *text) {
    free(text->data);
    text->data = NULL;
    text->len = 0;
}

static void guard_free(method_guard_t *guard) {
    if (guard == NULL) {
        return;
    }
    for (size_t i = 0; i < guard->deny_count; i++) {
        text_free(&guard->deny[i]);
    }
    free(guard->deny);
    text_free(&guard->header);
    text_free(&guard->value);
    free(guard);
}

/* ---- Options, read through the host's option readers (ABI 1.1): no JSON parser in the plugin. The options
 * object may hold "deny" (a list of method paths), "header" and "value" (strings); anything else is refused with a
 * message, the right answer for a plugin whose options come from an operator's YAML. --------------------------- */

typedef struct options {
    const s2s_host_api_t *api;
    s2s_host_t *host;
    char *error;
    size_t error_capacity;
} options_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(options_t *o, const char *format, ...) {
    if (o->error != NULL && o->error_capacity > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(o->error, o->error_capacity, format, args);
        va_end(args);
    }
    return 0;
}

static s2s_option_type_t option_type(options_t *o, const char *pointer) {
    return o->api->option_type(o->host, pointer, strlen(pointer));
}

/* A NUL-terminated copy of the string at `pointer` (a JSON Pointer such as "/deny/0"). */
static int option_text(options_t *o, const char *pointer, text_t *out, const char *what) {
    s2s_bytes_t value;
    if (o->api->option_string(o->host, pointer, strlen(pointer), &value) != 0) {
        return fail(o, "%s must be a string", what);
    }
    if (value.len > 0 && memchr(value.data, 0, value.len) != NULL) {
        return fail(o, "%s holds a NUL character", what);
    }
    out->data = malloc(value.len + 1);
    if (out->data == NULL) {
        return fail(o, "out of memory");
    }
    if (value.len > 0) {
        memcpy(out->data, value.data, value.len);
    }
    out->data[value.len] = '\0';
    out->len = value.len;
    return 1;
}

static int key_is(s2s_bytes_t key, const char *name) {
    return key.len == strlen(name) && memcmp(key.data, name, key.len) == 0;
}

static int read_options(options_t *o, method_guard_t *guard) {
    const s2s_host_api_t *api = o->api;
    if (option_type(o, "") != S2S_OPTION_OBJECT) {
        return fail(o, "options must be a mapping (a JSON object)");
    }
    size_t keys = api->option_count(o->host, "", 0);
    for (size_t i = 0; i < keys; i++) {
        s2s_bytes_t key;
        if (api->option_key(o->host, "", 0, i, &key) != 0) {
            return fail(o, "the host could not list the options");
        }
        if (!key_is(key, "deny") && !key_is(key, "header") && !key_is(key, "value")) {
            return fail(o, "unknown option '%.*s'; method-guard reads deny, header and value", (int)key.len,
                        (const char *)key.data);
        }
    }
    s2s_option_type_t deny = option_type(o, "/deny");
    if (deny != S2S_OPTION_ABSENT) {
        if (deny != S2S_OPTION_ARRAY) {
            return fail(o, "options.deny must be a list of method paths, e.g. [\"/pkg.Service/Method\"]");
        }
        size_t count = api->option_count(o->host, "/deny", 5);
        guard->deny = calloc(count > 0 ? count : 1, sizeof(text_t));
        if (guard->deny == NULL) {
            return fail(o, "out of memory");
        }
        for (size_t i = 0; i < count; i++) {
            char pointer[32];
            snprintf(pointer, sizeof pointer, "/deny/%zu", i);
            text_t *method = &guard->deny[guard->deny_count];
            if (!option_text(o, pointer, method, "every entry of options.deny")) {
                return 0;
            }
            guard->deny_count++;
            if (method->len == 0 || method->data[0] != '/') {
                return fail(o, "options.deny: '%s' is not a method path like /package.Service/Method", method->data);
            }
        }
    }
    if (option_type(o, "/header") != S2S_OPTION_ABSENT &&
        !option_text(o, "/header", &guard->header, "options.header")) {
        return 0;
    }
    if (option_type(o, "/value") != S2S_OPTION_ABSENT && !option_text(o, "/value", &guard->value, "options.value")) {
        return 0;
    }
    return 1;
}

static int set_default(text_t *text, const char *value) {
    if (text->data != NULL) {
        return 1;
    }
    text->len = strlen(value);
    text->data = malloc(text->len + 1);
    if (text->data == NULL) {
        return 0;
    }
    memcpy(text->data, value, text->len + 1);
    return 1;
}

/* ---- Hooks -------------------------------------------------------------------------------------------------- */

static void *config_new(const s2s_plugin_api_t *plugin, const s2s_host_api_t *api, s2s_host_t *host,
                        s2s_bytes_t options_json, char *error, size_t error_capacity) {
    (void)plugin;       /* this plugin exports one table; a plugin serving several could tell them apart by it */
    (void)options_json; /* the same options, read through the host's option readers instead */
    options_t options = {api, host, error, error_capacity};
    if (api == NULL) {
        fail(&options, "the host passed no API table");
        return NULL;
    }
    /* The option readers came with ABI 1.1: an older host has none (and a host struct is read only as far as its
     * struct_size goes). */
    if (!S2S_HAS_FIELD(api, s2s_host_api_t, option_key) || api->option_type == NULL || api->option_key == NULL) {
        fail(&options, "method-guard needs an s2s-proxy with plugin ABI 1.1 or later (this one has %u.%u)",
             (unsigned)api->abi_major, (unsigned)api->abi_minor);
        return NULL;
    }
    method_guard_t *guard = calloc(1, sizeof(method_guard_t));
    if (guard == NULL) {
        fail(&options, "out of memory");
        return NULL;
    }
    guard->api = api;
    guard->host = host;
    if (!read_options(&options, guard)) {
        guard_free(guard);
        return NULL;
    }
    if (!set_default(&guard->header, "x-s2s-method-guard") || !set_default(&guard->value, "passed")) {
        fail(&options, "out of memory");
        guard_free(guard);
        return NULL;
    }
    for (size_t i = 0; i < guard->header.len; i++) {
        char c = guard->header.data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
            fail(&options, "options.header '%s' is not a lowercase header name such as x-team", guard->header.data);
            guard_free(guard);
            return NULL;
        }
    }
    /* Metrics are defined now, while the config is created; a host without them just gets no counter. */
    if (S2S_HAS_FIELD(api, s2s_host_api_t, record_metric) && api->define_metric != NULL &&
        api->record_metric != NULL) {
        static const char name[] = "method_guard_denied_total";
        static const char help[] = "Calls rejected because their method is denied";
        guard->denied_metric =
            api->define_metric(host, S2S_METRIC_COUNTER, name, sizeof name - 1, help, sizeof help - 1);
    }
    return guard;
}

static void config_destroy(void *config) {
    guard_free(config);
}

static uint32_t wants(void *config, s2s_bytes_t method, s2s_side_t side) {
    (void)config;
    (void)method;
    (void)side;
    return S2S_WANTS_CALL; /* every call, no messages */
}

static int method_is(const text_t *denied, s2s_bytes_t method) {
    return denied->len == method.len && memcmp(denied->data, method.data, method.len) == 0;
}

static s2s_outcome_t call_start(void *config, s2s_call_t *call, const s2s_call_info_t *info, void **call_state) {
    method_guard_t *guard = config;
    const s2s_host_api_t *api = guard->api;
    (void)call_state; /* no per-call state: it stays NULL */
    if (!S2S_HAS_FIELD(api, s2s_host_api_t, set_status) || api->set_status == NULL || api->set_header == NULL) {
        return S2S_ERROR; /* a host too old to reject or stamp: let its failure policy decide */
    }
    if (info == NULL || !S2S_HAS_FIELD(info, s2s_call_info_t, method) ||
        (info->method.data == NULL && info->method.len > 0)) {
        static const char message[] = "method-guard got no method path";
        api->set_status(call, GRPC_INTERNAL, message, sizeof message - 1);
        return S2S_ERROR;
    }
    for (size_t i = 0; i < guard->deny_count; i++) {
        if (method_is(&guard->deny[i], info->method)) {
            char message[512];
            int len = snprintf(message, sizeof message, "method %.*s is denied by method-guard",
                               (int)(info->method.len > 400 ? 400 : info->method.len), (const char *)info->method.data);
            if (len < 0) {
                len = 0;
            } else if ((size_t)len >= sizeof message) {
                len = (int)sizeof message - 1;
            }
            api->set_status(call, GRPC_PERMISSION_DENIED, message, (size_t)len);
            if (guard->denied_metric != 0) {
                api->record_metric(guard->host, guard->denied_metric, 1.0);
            }
            if (api->log != NULL && api->log_enabled != NULL && api->log_enabled(guard->host, S2S_LOG_DEBUG)) {
                api->log(guard->host, S2S_LOG_DEBUG, message, (size_t)len);
            }
            return S2S_REJECTED;
        }
    }
    if (api->set_header(call, guard->header.data, guard->header.len, (const uint8_t *)guard->value.data,
                        guard->value.len) != 0) {
        static const char message[] = "the host refused method-guard's header";
        api->set_status(call, GRPC_INTERNAL, message, sizeof message - 1);
        return S2S_ERROR;
    }
    return S2S_OK;
}

/* ---- The table and the entry point -------------------------------------------------------------------------- */

static const s2s_plugin_api_t method_guard_api = {
    .struct_size = sizeof(s2s_plugin_api_t),
    .abi_major = S2S_PLUGIN_ABI_MAJOR,
    .abi_minor = S2S_PLUGIN_ABI_MINOR,
    .name = "method-guard",
    .version = "1.0.0",
    .description = "Rejects denied methods with PERMISSION_DENIED and stamps a header on every other call",
    .config_new = config_new,
    .config_destroy = config_destroy,
    .schema_ready = NULL, /* needs no schema */
    .wants = wants,
    .call_start = call_start,
    .on_message = NULL, /* wants no messages */
    .call_end = NULL,   /* keeps no per-call state */
};

const s2s_plugin_api_t *s2s_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    if (host_abi_major != S2S_PLUGIN_ABI_MAJOR) {
        fprintf(stderr, "method-guard was built for plugin ABI %d.%d, but the host speaks %u.%u; rebuild it against"
                        " the host's s2s_plugin.h\n",
                S2S_PLUGIN_ABI_MAJOR, S2S_PLUGIN_ABI_MINOR, (unsigned)host_abi_major, (unsigned)host_abi_minor);
        return NULL;
    }
    return &method_guard_api;
}
