/*
 * s2s-proxy translator plugin ABI, version 1.1.
 *
 * The one contract between the s2s-proxy host and translator plugins: shared objects (`.so`) that the host loads at
 * run time and runs over the gRPC calls it forwards. A plugin may read and rewrite request metadata, rewrite
 * messages in both directions, or reject a call with a gRPC status. Plain C99; nothing but <stdint.h> and
 * <stddef.h>; no C++ or Swift types cross the boundary. docs/PLUGINS.md is the guide; this header is the reference.
 *
 * ---------------------------------------------------------------------------------------------------------------
 * VERSIONING
 *   A plugin exports one symbol, `s2s_plugin_entry`, returning a table that starts with the ABI version the plugin
 *   was built against. The host refuses a plugin of another major version (naming both versions and the file).
 *   Minor versions only append: every struct that crosses the boundary starts with `struct_size`, new fields go at
 *   the end, and each side reads only the fields the other side's `struct_size` covers. So a plugin built for 1.0
 *   loads into a 1.3 host, and a plugin built for 1.3 loads into a 1.0 host (it must not call host functions that
 *   the host's `s2s_host_api_t.struct_size` does not cover; use S2S_HAS_FIELD).
 *   1.1 added: `s2s_plugin_api_t.swift_release`; the option readers of `s2s_host_api_t` (option_type ... option_key);
 *   response metadata for plugins (S2S_WANTS_RESPONSE_METADATA, `s2s_plugin_api_t.on_response_metadata`).
 *
 * LIFECYCLE (all on the host's control thread unless stated)
 *   1. dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) of a private copy of the file (so that the file may be
 *      rebuilt while the host runs), then `s2s_plugin_entry(host major, host minor)`. Called once per build of a
 *      file and process: a reload that finds the file rebuilt loads the new build beside the old one. The host
 *      never dlcloses a plugin: a Swift or Go runtime inside cannot be unloaded safely.
 *   2. `config_new` once per chain entry that names the plugin (a plugin may appear in several chains, with
 *      different options). It validates the options and returns an opaque config, or fails with a message.
 *   3. `schema_ready` (only plugins that set it): once, when the Temporal schema is known. Until it has returned
 *      S2S_OK, calls the plugin wants are answered UNAVAILABLE by the host and none of its call hooks run.
 *   4. `wants` per (method, side), asked once and cached for the life of the config.
 *   5. Per call (on the call's event loop): `call_start`, then `on_message` per message in either direction (and
 *      `on_response_metadata` for the response's headers and trailers), then `call_end`, exactly once, however the
 *      call ended.
 *   6. `config_destroy` on shutdown or when a reloaded configuration replaced this chain and its last call ended.
 *
 * THREADS
 *   Control-thread hooks never run concurrently with each other for one plugin. The call hooks of one call run on
 *   one thread, one at a time, in order. Different calls run concurrently on different threads, so a config is
 *   shared by several threads: treat it as immutable after `config_new`/`schema_ready` returned (the host publishes
 *   it to the call threads with a full memory barrier), or synchronise yourself. Host functions may be called from
 *   the thread of the hook that was given the handle they take, during that hook only, unless stated otherwise.
 *   Hooks must not block (no I/O, no locks held long): they run on the proxy's event loops, where one slow hook
 *   delays every call on that loop. The host measures each hook.
 *
 * ENUMS
 *   Later minor versions may add values to the enums the host passes (s2s_side_t, s2s_direction_t, ...). A plugin
 *   answers 0 from `wants` for a side it does not know and S2S_OK for a message direction it does not know; the
 *   host, in turn, treats an outcome it does not know as a plugin failure.
 *
 * OWNERSHIP
 *   `_host` in a name: memory owned by the host, valid for the duration of the hook it was passed to (or as the
 *   comment says); the plugin copies what it keeps. `_plugin`: owned by the plugin. Output that outlives a hook
 *   (replacement messages, header edits, status messages) is handed over through host functions that COPY it, so
 *   no memory is ever freed by the side that did not allocate it.
 *
 * FAILURE
 *   A hook that returns S2S_ERROR reports a plugin failure (with a message set through `set_status`). The chain
 *   entry's policy decides: fail closed (the default: the call ends with INTERNAL naming the plugin) or fail open
 *   (the message or metadata is forwarded as if the plugin had returned S2S_OK; counted and logged). A crash or
 *   abort inside a plugin ends the process: the host cannot isolate native code.
 * ---------------------------------------------------------------------------------------------------------------
 */
#ifndef S2S_PLUGIN_H
#define S2S_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define S2S_PLUGIN_ABI_MAJOR 1
#define S2S_PLUGIN_ABI_MINOR 1

/* The name of the one symbol a plugin exports (see s2s_plugin_entry_fn). */
#define S2S_PLUGIN_ENTRY_SYMBOL "s2s_plugin_entry"

/* Whether a struct received from the other side, which says its size in `struct_size`, includes FIELD. */
#define S2S_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- Plain data ------------------------------------------------------------------------------------------------ */

/* A byte range. Not NUL-terminated unless a comment says so. */
typedef struct s2s_bytes {
    const uint8_t *data;
    size_t len;
} s2s_bytes_t;

/* Which listener the call came through. */
typedef enum s2s_side {
    S2S_SIDE_OUTBOUND = 1, /* from the local cluster, going to the remote one */
    S2S_SIDE_INBOUND = 2   /* from the remote cluster, going to the local one */
} s2s_side_t;

/* Which way a message travels. */
typedef enum s2s_direction {
    S2S_DIRECTION_REQUEST = 1,  /* client to server */
    S2S_DIRECTION_RESPONSE = 2  /* server to client */
} s2s_direction_t;

typedef enum s2s_log_level {
    S2S_LOG_DEBUG = 1,
    S2S_LOG_INFO = 2,
    S2S_LOG_WARNING = 3,
    S2S_LOG_ERROR = 4
} s2s_log_level_t;

/* What a JSON Pointer into a chain entry's options names (ABI 1.1, s2s_host_api_t.option_type). */
typedef enum s2s_option_type {
    S2S_OPTION_ABSENT = 0,  /* nothing there (or a malformed pointer) */
    S2S_OPTION_NULL = 1,
    S2S_OPTION_BOOL = 2,
    S2S_OPTION_NUMBER = 3,
    S2S_OPTION_STRING = 4,
    S2S_OPTION_ARRAY = 5,
    S2S_OPTION_OBJECT = 6
} s2s_option_type_t;

typedef enum s2s_metric_kind {
    S2S_METRIC_COUNTER = 1,   /* monotonically increasing; record adds the value (>= 0) */
    S2S_METRIC_HISTOGRAM = 2  /* record observes the value */
} s2s_metric_kind_t;

/* What a hook decided. */
typedef enum s2s_outcome {
    /* Go on: forward the message / metadata as it now stands. For a message, the original bytes are forwarded
     * without a copy. */
    S2S_OK = 0,
    /* on_message only: forward the bytes given to set_message instead of the original. */
    S2S_REPLACED = 1,
    /* End the call with the status given to set_status (which the caller receives; the code must not be 0/OK).
     * The upstream call, if already open, is cancelled. Later plugins in the chain do not see the message. */
    S2S_REJECTED = 2,
    /* The plugin failed (message via set_status); the chain entry's failure policy applies. */
    S2S_ERROR = 3
} s2s_outcome_t;

/* What a plugin wants of calls of one method on one side (bits; 0 = skip these calls entirely, at no cost). */
#define S2S_WANTS_CALL 1u              /* call_start / call_end: method, metadata (may edit it or reject the call) */
#define S2S_WANTS_REQUEST_MESSAGES 2u  /* on_message for requests (implies S2S_WANTS_CALL) */
#define S2S_WANTS_RESPONSE_MESSAGES 4u /* on_message for responses (implies S2S_WANTS_CALL) */
#define S2S_WANTS_RESPONSE_METADATA 8u /* ABI 1.1: on_response_metadata for the response's headers and trailers
                                        * (implies S2S_WANTS_CALL) */
#define S2S_WANTS_ERROR_TRAILERS 16u   /* ABI 1.1: on_response_metadata for the trailers of calls that end with a
                                        * status other than OK, and nothing else (implies S2S_WANTS_CALL): for a
                                        * plugin that only translates error details, successful calls cost nothing */

/* One metadata entry. Names are lowercase ASCII; values of names ending in "-bin" are the decoded binary bytes. */
typedef struct s2s_header {
    s2s_bytes_t name;
    s2s_bytes_t value;
} s2s_header_t;

/* Which metadata on_response_metadata is given (ABI 1.1). */
typedef enum s2s_metadata_kind {
    S2S_METADATA_RESPONSE_HEADERS = 1,  /* the response's first HEADERS: custom metadata, grpc-encoding, ... */
    S2S_METADATA_RESPONSE_TRAILERS = 2  /* the response's last HEADERS: grpc-status, grpc-message,
                                         * grpc-status-details-bin, ...; for a response that is nothing but trailers
                                         * (gRPC's Trailers-Only), everything the server sent */
} s2s_metadata_kind_t;

/* ---- Handles (opaque, host-owned) ---------------------------------------------------------------------------- */

/* One chain entry's link to the host: logging and metrics. Valid from config_new until config_destroy returns;
 * may be used from any thread while valid. */
typedef struct s2s_host s2s_host_t;

/* One call as the host tracks it. Valid during the call hooks that receive it (call_start, on_message, call_end),
 * on that hook's thread. */
typedef struct s2s_call s2s_call_t;

/* ---- What the host offers ------------------------------------------------------------------------------------ */

typedef struct s2s_host_api {
    uint32_t struct_size;
    uint16_t abi_major; /* the host's ABI version */
    uint16_t abi_minor;

    /* Writes a line into the host's log, tagged with the plugin and chain entry. `message` need not be
     * NUL-terminated. Cheap to call when the level is disabled, but formatting is not: check log_enabled. */
    void (*log)(s2s_host_t *host, s2s_log_level_t level, const char *message, size_t len);
    int (*log_enabled)(s2s_host_t *host, s2s_log_level_t level);

    /* Defines a metric; only from config_new or schema_ready. `name` (letters, digits, '_'; the host prefixes
     * "s2s_plugin_" and adds labels plugin and connection) and `help` are copied. Returns an id > 0 for `record`,
     * or 0 if the name is invalid or already used with another kind. Defining the same name and kind again
     * returns the same id. */
    uint32_t (*define_metric)(s2s_host_t *host, s2s_metric_kind_t kind, const char *name, size_t name_len,
                              const char *help, size_t help_len);
    /* Records a value; any thread, at any time after the definition. Unknown ids are ignored. Cheap (two short
     * uncontended locks in the host today), but not free: record per call or message, not per byte. */
    void (*record_metric)(s2s_host_t *host, uint32_t metric_id, double value);

    /* call_start: metadata edits, applied in order to the request metadata that later plugins and the upstream
     * see; on_response_metadata (ABI 1.1): the same to the response metadata that plugins nearer the client and the
     * client see (there `grpc-status` is not editable: it said how the call ended; reject the call to change it).
     * Names must be lowercase and may not start with ':' (pseudo-headers are not editable) or be a connection-level
     * header; values of "-bin" names are raw bytes (the host base64-encodes them). Returns 0 on success, -1 if the
     * edit was refused (invalid name or value, or not in one of those hooks). */
    int (*set_header)(s2s_call_t *call, const char *name, size_t name_len, const uint8_t *value, size_t value_len);
    int (*add_header)(s2s_call_t *call, const char *name, size_t name_len, const uint8_t *value, size_t value_len);
    int (*remove_header)(s2s_call_t *call, const char *name, size_t name_len);

    /* on_message only: the replacement message (without the 5-byte gRPC prefix), copied by the host. The last
     * call before the hook returns S2S_REPLACED wins. Returns 0, or -1 outside on_message. */
    int (*set_message)(s2s_call_t *call, const uint8_t *data, size_t len);

    /* Any call hook: the status for S2S_REJECTED (a gRPC code 1-16 and a message for the caller) or the detail
     * for S2S_ERROR (the code is ignored). The message is copied. Returns 0, or -1 if the code is invalid. */
    int (*set_status)(s2s_call_t *call, uint32_t grpc_code, const char *message, size_t len);

    /* ABI 1.1, config_new only: the entry's options, read without a JSON parser (the `options_json` config_new is
     * given is the same document). `pointer` is a JSON Pointer (RFC 6901) into the options object: "" is the object
     * itself, "/mappings/0/local" a nested value; inside a key "~1" stands for '/' and "~0" for '~'. Strings and
     * keys handed out are _host (UTF-8, not NUL-terminated), valid until config_new returns. Outside config_new,
     * and for a pointer that names nothing, option_type answers S2S_OPTION_ABSENT, option_count 0 and the rest -1.
     * Check S2S_HAS_FIELD(api, s2s_host_api_t, option_key) first: a 1.0 host has none of these. */
    s2s_option_type_t (*option_type)(s2s_host_t *host, const char *pointer, size_t pointer_len);
    /* The value, if it is of that type: 0, else -1. A bool is 0 or 1; every number is a double (integers exact to
     * 2^53). */
    int (*option_string)(s2s_host_t *host, const char *pointer, size_t pointer_len, s2s_bytes_t *value);
    int (*option_number)(s2s_host_t *host, const char *pointer, size_t pointer_len, double *value);
    int (*option_bool)(s2s_host_t *host, const char *pointer, size_t pointer_len, int *value);
    /* The elements of an array or the members of an object; 0 for anything else. */
    size_t (*option_count)(s2s_host_t *host, const char *pointer, size_t pointer_len);
    /* The key of member `index` (0-based, keys in ascending byte order) of the object at `pointer`: to walk a map, or
     * to refuse keys the plugin does not know. 0, or -1 if there is no such member. */
    int (*option_key)(s2s_host_t *host, const char *pointer, size_t pointer_len, size_t index, s2s_bytes_t *key);
} s2s_host_api_t;

/* ---- What the host passes to hooks --------------------------------------------------------------------------- */

typedef struct s2s_call_info {
    uint32_t struct_size;
    s2s_bytes_t method;             /* the ":path", e.g. "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution" */
    s2s_side_t side;
    s2s_bytes_t connection;         /* the cluster connection's configured name */
    const s2s_header_t *headers;    /* request metadata (no pseudo-headers), including edits by earlier plugins */
    size_t header_count;
} s2s_call_info_t;

typedef struct s2s_message {
    uint32_t struct_size;
    s2s_direction_t direction;
    uint64_t index;                 /* 0-based position of this message among the call's messages in `direction` */
    s2s_bytes_t payload;            /* the message without its 5-byte prefix; _host, valid during on_message */
    uint32_t compressed;            /* 1: payload is compressed with the call's grpc-encoding (see call metadata);
                                     * the host inflates gzip and deflate itself, so only other encodings show here */
} s2s_message_t;

typedef struct s2s_metadata {
    uint32_t struct_size;
    s2s_metadata_kind_t kind;
    const s2s_header_t *headers;    /* no pseudo-headers; including edits by the plugins that saw it first */
    size_t header_count;
} s2s_metadata_t;

typedef struct s2s_call_end {
    uint32_t struct_size;
    int32_t grpc_status;            /* the status the client received, or -1 if the call was reset or cut off */
} s2s_call_end_t;

/* ---- What the plugin provides -------------------------------------------------------------------------------- */

/* Whether `name` may be a plugin's name (s2s_plugin_api_t.name): not empty, ASCII letters, digits, '-' and '_' only.
 * The host refuses a plugin whose name is not (it names the plugin in logs, metric labels and `name:`). */
static inline int s2s_plugin_name_is_valid(const char *name) {
    if (name == 0 || *name == '\0') return 0;
    for (const char *c = name; *c != '\0'; c++) {
        int letter = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z');
        int digit = *c >= '0' && *c <= '9';
        if (!letter && !digit && *c != '-' && *c != '_') return 0;
    }
    return 1;
}

typedef struct s2s_plugin_api {
    uint32_t struct_size;           /* sizeof(s2s_plugin_api_t) as the plugin was compiled */
    uint16_t abi_major;             /* S2S_PLUGIN_ABI_MAJOR as the plugin was compiled */
    uint16_t abi_minor;
    const char *name;               /* NUL-terminated, _plugin, static; ASCII letters, digits, '-', '_' only */
    const char *version;            /* NUL-terminated, _plugin, static: e.g. "1.2.0" */
    const char *description;        /* NUL-terminated, _plugin, static, one line; may be NULL */

    /* Creates a configuration. `plugin`: this very table, as s2s_plugin_entry returned it (so that one
     * implementation can serve several tables). `options_json`: the chain entry's `options` as a JSON object
     * (host-owned, valid during the call; "{}" when none). `host`/`api` stay valid until config_destroy. On failure
     * return NULL and write a NUL-terminated message (what is wrong and what to do) into `error` (error_capacity
     * bytes, _host; the host gives at least 256). */
    void *(*config_new)(const struct s2s_plugin_api *plugin, const s2s_host_api_t *api, s2s_host_t *host,
                        s2s_bytes_t options_json, char *error, size_t error_capacity);
    void (*config_destroy)(void *config);

    /* NULL if the plugin needs no schema. Otherwise called once with the Temporal schema, a serialized
     * google.protobuf.FileDescriptorSet (_host, valid during the call: copy or index what you keep). Return S2S_OK,
     * or S2S_ERROR with a message in `error` (e.g. a configured field that the schema does not have); the host
     * then keeps answering the plugin's calls UNAVAILABLE with that message. `error` as in config_new. */
    s2s_outcome_t (*schema_ready)(void *config, s2s_bytes_t file_descriptor_set, char *error, size_t error_capacity);

    /* S2S_WANTS_* bits for calls of `method` (":path", _host) through `side`. Asked once per (method, side) and
     * cached; must depend on nothing but its arguments and the config. May run on any thread, concurrently. */
    uint32_t (*wants)(void *config, s2s_bytes_t method, s2s_side_t side);

    /* A call the plugin wants begins, before anything is sent upstream. `info` is _host, valid during the hook.
     * May edit metadata (set_header, ...), set *call_state (NULL by default; passed to the call's later hooks),
     * or reject the call (S2S_REJECTED: the upstream is never contacted). Returning S2S_REPLACED is an error.
     * If it fails (S2S_ERROR) and the entry fails open, the plugin sees nothing more of this call but call_end. */
    s2s_outcome_t (*call_start)(void *config, s2s_call_t *call, const s2s_call_info_t *info, void **call_state);

    /* One message of a call, in the direction(s) the plugin wants. Messages reach plugins in chain order for
     * requests and in reverse chain order for responses (the plugin nearest the server sees a response first),
     * each seeing the previous plugin's output. May be NULL if the plugin wants no messages. */
    s2s_outcome_t (*on_message)(void *config, void *call_state, s2s_call_t *call, const s2s_message_t *message);

    /* The call is over (completed, rejected, failed or reset); free *call_state. Exactly once per call_start that
     * returned (whatever it returned). May be NULL. */
    void (*call_end)(void *config, void *call_state, s2s_call_t *call, const s2s_call_end_t *end);

    /* ABI 1.1. The Swift release of the compiler that built the plugin, "major.minor" (e.g. "6.3"), NUL-terminated,
     * _plugin, static; NULL (or not covered by struct_size) for a plugin not written in Swift. A Swift plugin runs on
     * the host process's Swift runtime, so the host refuses one built with another release than its own, naming
     * both (`s2s-proxy --version` prints the host's). PluginKit fills it in. */
    const char *swift_release;

    /* ABI 1.1. The response's metadata, for calls whose `wants` has S2S_WANTS_RESPONSE_METADATA: once with its
     * headers and once with its trailers (a Trailers-Only response: once, as trailers); with S2S_WANTS_ERROR_TRAILERS
     * only, once with the trailers of a call whose grpc-status is not 0; in the order responses
     * travel (the plugin nearest the server first), each plugin seeing the edits of those before it. `metadata` is
     * _host, valid during the hook. Edit with set_header/add_header/remove_header, e.g. to translate names inside
     * grpc-status-details-bin (google.rpc.Status). S2S_OK goes on; S2S_REJECTED ends the call with the status given
     * to set_status instead (the client receives that status, not the server's); S2S_ERROR is a failure (the
     * entry's policy: fail closed ends the call with INTERNAL, fail open forwards the metadata as it stands).
     * May be NULL. Not called for a call whose call_start failed under fail open. */
    s2s_outcome_t (*on_response_metadata)(void *config, void *call_state, s2s_call_t *call,
                                          const s2s_metadata_t *metadata);
} s2s_plugin_api_t;

/* The entry point every plugin exports as "s2s_plugin_entry". Called once after dlopen with the host's ABI
 * version; returns the plugin's table (_plugin, static, valid until the process exits), or NULL to refuse this
 * host (say why on stderr). */
typedef const s2s_plugin_api_t *(*s2s_plugin_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor);

#ifdef __cplusplus
}
#endif

#endif /* S2S_PLUGIN_H */
