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
 * What it shows: the entry point and its version check, options validated in config_new with a message that says
 * what to do, a metric defined at config time and recorded per call, reading host structs only as far as their
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

/* ---- A JSON scanner for exactly this option shape: an object of "deny" (array of strings), "header" and
 * "value" (strings). Anything else is refused with a message; that is the right answer for a plugin, whose
 * options come from an operator's YAML and deserve a loud error at start-up. ---------------------------------- */

typedef struct scanner {
    const uint8_t *at;
    const uint8_t *end;
    char *error;
    size_t error_capacity;
    int failed;
} scanner_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(scanner_t *s, const char *format, ...) {
    if (s->failed) {
        return;
    }
    s->failed = 1;
    if (s->error != NULL && s->error_capacity > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(s->error, s->error_capacity, format, args);
        va_end(args);
    }
}

static void skip_space(scanner_t *s) {
    while (s->at < s->end && (*s->at == ' ' || *s->at == '\t' || *s->at == '\n' || *s->at == '\r')) {
        s->at++;
    }
}

static int accept(scanner_t *s, char c) {
    skip_space(s);
    if (s->at < s->end && *s->at == (uint8_t)c) {
        s->at++;
        return 1;
    }
    return 0;
}

/* A JSON string without \u escapes, into a fresh NUL-terminated copy. */
static int scan_string(scanner_t *s, text_t *out, const char *what) {
    if (!accept(s, '"')) {
        fail(s, "%s must be a string", what);
        return 0;
    }
    /* The decoded text is never longer than the encoded one. */
    char *data = malloc((size_t)(s->end - s->at) + 1);
    if (data == NULL) {
        fail(s, "out of memory");
        return 0;
    }
    size_t len = 0;
    while (s->at < s->end && *s->at != '"') {
        uint8_t c = *s->at++;
        if (c < 0x20) {
            fail(s, "%s holds a control character", what);
            free(data);
            return 0;
        }
        if (c == '\\') {
            if (s->at == s->end) {
                break;
            }
            uint8_t e = *s->at++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            default:
                fail(s, "%s uses the escape \\%c, which method-guard does not support; write the character itself",
                     what, e);
                free(data);
                return 0;
            }
        }
        if (c == 0) {
            fail(s, "%s holds a NUL character", what);
            free(data);
            return 0;
        }
        data[len++] = (char)c;
    }
    if (s->at == s->end) {
        fail(s, "options end inside %s", what);
        free(data);
        return 0;
    }
    s->at++; /* closing quote */
    data[len] = '\0';
    out->data = data;
    out->len = len;
    return 1;
}

static int scan_deny(scanner_t *s, method_guard_t *guard) {
    if (!accept(s, '[')) {
        fail(s, "options.deny must be a list of method paths, e.g. [\"/pkg.Service/Method\"]");
        return 0;
    }
    if (accept(s, ']')) {
        return 1;
    }
    do {
        text_t method = {0};
        if (!scan_string(s, &method, "every entry of options.deny")) {
            return 0;
        }
        if (method.len == 0 || method.data[0] != '/') {
            fail(s, "options.deny: '%s' is not a method path like /package.Service/Method", method.data);
            text_free(&method);
            return 0;
        }
        text_t *grown = realloc(guard->deny, (guard->deny_count + 1) * sizeof(text_t));
        if (grown == NULL) {
            fail(s, "out of memory");
            text_free(&method);
            return 0;
        }
        guard->deny = grown;
        guard->deny[guard->deny_count++] = method;
    } while (accept(s, ','));
    if (!accept(s, ']')) {
        fail(s, "options.deny: expected ',' or ']' after a method");
        return 0;
    }
    return 1;
}

static int scan_options(scanner_t *s, method_guard_t *guard) {
    if (!accept(s, '{')) {
        fail(s, "options must be a mapping (a JSON object)");
        return 0;
    }
    if (!accept(s, '}')) {
        do {
            text_t key = {0};
            if (!scan_string(s, &key, "an option name")) {
                return 0;
            }
            int ok = accept(s, ':');
            if (!ok) {
                fail(s, "expected ':' after option '%s'", key.data);
            } else if (strcmp(key.data, "deny") == 0) {
                ok = scan_deny(s, guard);
            } else if (strcmp(key.data, "header") == 0) {
                text_free(&guard->header);
                ok = scan_string(s, &guard->header, "options.header");
            } else if (strcmp(key.data, "value") == 0) {
                text_free(&guard->value);
                ok = scan_string(s, &guard->value, "options.value");
            } else {
                fail(s, "unknown option '%s'; method-guard reads deny, header and value", key.data);
                ok = 0;
            }
            text_free(&key);
            if (!ok) {
                return 0;
            }
        } while (accept(s, ','));
        if (!accept(s, '}')) {
            fail(s, "expected ',' or '}' after an option");
            return 0;
        }
    }
    skip_space(s);
    if (s->at != s->end) {
        fail(s, "unexpected text after the options object");
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
    (void)plugin; /* this plugin exports one table; a plugin serving several could tell them apart by it */
    scanner_t scanner = {NULL, NULL, error, error_capacity, 0};
    if (api == NULL) {
        fail(&scanner, "the host passed no API table");
        return NULL;
    }
    if (options_json.data == NULL && options_json.len != 0) {
        fail(&scanner, "the host passed options without bytes");
        return NULL;
    }
    if (options_json.data != NULL) {
        scanner.at = options_json.data;
        scanner.end = options_json.data + options_json.len;
    }
    method_guard_t *guard = calloc(1, sizeof(method_guard_t));
    if (guard == NULL) {
        fail(&scanner, "out of memory");
        return NULL;
    }
    guard->api = api;
    guard->host = host;
    /* No options at all is the same as {}. */
    if (options_json.len > 0 && !scan_options(&scanner, guard)) {
        guard_free(guard);
        return NULL;
    }
    if (!set_default(&guard->header, "x-s2s-method-guard") || !set_default(&guard->value, "passed")) {
        fail(&scanner, "out of memory");
        guard_free(guard);
        return NULL;
    }
    for (size_t i = 0; i < guard->header.len; i++) {
        char c = guard->header.data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
            fail(&scanner, "options.header '%s' is not a lowercase header name such as x-team", guard->header.data);
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
