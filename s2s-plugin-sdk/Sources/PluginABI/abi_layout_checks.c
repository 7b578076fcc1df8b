/*
 * Compile-time checks on the plugin ABI's layout. The first fields of s2s_plugin_api_t are read before the host
 * knows which ABI major a plugin was built for, so they may never move; the rest of the layout is pinned on the
 * platforms we build for, so that an accidental reordering in the header breaks the build instead of plugins.
 */
#include "s2s_plugin.h"

_Static_assert(offsetof(s2s_plugin_api_t, struct_size) == 0, "struct_size opens every crossing struct");
_Static_assert(offsetof(s2s_plugin_api_t, abi_major) == 4, "abi_major is read before the version is known");
_Static_assert(offsetof(s2s_plugin_api_t, abi_minor) == 6, "abi_minor is read before the version is known");
_Static_assert(offsetof(s2s_host_api_t, struct_size) == 0, "struct_size opens every crossing struct");
_Static_assert(offsetof(s2s_call_info_t, struct_size) == 0, "struct_size opens every crossing struct");
_Static_assert(offsetof(s2s_message_t, struct_size) == 0, "struct_size opens every crossing struct");
_Static_assert(offsetof(s2s_call_end_t, struct_size) == 0, "struct_size opens every crossing struct");
_Static_assert(offsetof(s2s_metadata_t, struct_size) == 0, "struct_size opens every crossing struct");
_Static_assert(sizeof(s2s_side_t) == 4 && sizeof(s2s_direction_t) == 4 && sizeof(s2s_outcome_t) == 4
                   && sizeof(s2s_option_type_t) == 4 && sizeof(s2s_metadata_kind_t) == 4,
               "enums cross the boundary as 32-bit integers");

#if defined(__LP64__)
_Static_assert(sizeof(s2s_bytes_t) == 16, "ABI 1.x layout on 64-bit platforms");
_Static_assert(offsetof(s2s_plugin_api_t, name) == 8, "ABI 1.x layout on 64-bit platforms");
_Static_assert(offsetof(s2s_plugin_api_t, call_end) == 80, "ABI 1.x layout on 64-bit platforms");
_Static_assert(offsetof(s2s_plugin_api_t, swift_release) == 88, "ABI 1.0's table ends where 1.1's field begins");
_Static_assert(offsetof(s2s_plugin_api_t, on_response_metadata) == 96, "ABI 1.1 layout on 64-bit platforms");
_Static_assert(sizeof(s2s_plugin_api_t) == 104, "ABI 1.1 layout on 64-bit platforms");
_Static_assert(sizeof(s2s_metadata_t) == 24, "ABI 1.1 layout on 64-bit platforms");
_Static_assert(offsetof(s2s_host_api_t, option_type) == 80, "ABI 1.0's host table ends where 1.1's fields begin");
_Static_assert(sizeof(s2s_host_api_t) == 128, "ABI 1.1 layout on 64-bit platforms");
_Static_assert(sizeof(s2s_call_info_t) == 64, "ABI 1.x layout on 64-bit platforms");
_Static_assert(sizeof(s2s_message_t) == 40, "ABI 1.x layout on 64-bit platforms");
#endif
