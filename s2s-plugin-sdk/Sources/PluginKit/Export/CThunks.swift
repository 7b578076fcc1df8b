// The C function pointers of an exported plugin table.
//
// A `@convention(c)` function cannot capture anything, in particular not the plugin's Swift type. Every hook but
// one receives the opaque config pointer and finds the typed instance through it (`ExportedConfigBox`), so one
// shared set of thunks serves every plugin type. `config_new` receives the table the host called through, and
// `ExportRegistry` maps each exported table to the factory of its plugin type (one per shared object in
// production; tests export several types in one process).

import PluginABI

typealias ConfigNewFunction = @convention(c) (
    UnsafePointer<s2s_plugin_api_t>?, UnsafePointer<s2s_host_api_t>?, OpaquePointer?, s2s_bytes_t,
    UnsafeMutablePointer<CChar>?, Int
) -> UnsafeMutableRawPointer?

enum CThunks {
    /// Shared by every exported type: the host passes the table it called through, and the registry knows which
    /// plugin type that table belongs to.
    static let configNew: ConfigNewFunction = { plugin, api, host, options, error, capacity in
        guard let api else {
            ErrorText.store("config_new without a host API table (an ABI violation)", in: error, capacity: capacity)
            return nil
        }
        guard let plugin, let factory = ExportRegistry.shared.factory(table: plugin) else {
            ErrorText.store("config_new called with a table this plugin did not export (an ABI violation)", in: error, capacity: capacity)
            return nil
        }
        switch factory(HostServices(api), host, options) {
        case .success(let config):
            return config
        case .failure(let failure):
            ErrorText.store(failure.message, in: error, capacity: capacity)
            return nil
        }
    }

    static let configDestroy: @convention(c) (UnsafeMutableRawPointer?) -> Void = { config in
        guard let config else { return }
        Unmanaged<ExportedConfigBox>.fromOpaque(config).release()
    }

    static let schemaReady: @convention(c) (UnsafeMutableRawPointer?, s2s_bytes_t, UnsafeMutablePointer<CChar>?, Int)
        -> s2s_outcome_t = { config, schema, error, capacity in
            guard let config else {
                ErrorText.store("schema_ready without a config (an ABI violation)", in: error, capacity: capacity)
                return S2S_ERROR
            }
            return ExportedConfigBox.from(config).hooks.schemaReady(schema, error: error, capacity: capacity)
        }

    static let wants: @convention(c) (UnsafeMutableRawPointer?, s2s_bytes_t, s2s_side_t) -> UInt32 = {
        config, method, side in
        guard let config else { return 0 }
        return ExportedConfigBox.from(config).hooks.wants(method: method, side: side)
    }

    static let callStart: @convention(c) (
        UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_call_info_t>?,
        UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> s2s_outcome_t = { config, call, info, callState in
        guard let config else { return S2S_ERROR }
        return ExportedConfigBox.from(config).callStart(call, info, callState)
    }

    static let onMessage: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_message_t>?
    ) -> s2s_outcome_t = { config, callState, call, message in
        guard let config else { return S2S_ERROR }
        return ExportedConfigBox.from(config).onMessage(callState, call, message)
    }

    static let onResponseMetadata: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_metadata_t>?
    ) -> s2s_outcome_t = { config, callState, call, metadata in
        guard let config else { return S2S_ERROR }
        return ExportedConfigBox.from(config).onResponseMetadata(callState, call, metadata)
    }

    static let callEnd: @convention(c) (
        UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<s2s_call_end_t>?
    ) -> Void = { config, callState, _, end in
        guard let config else { return }
        ExportedConfigBox.from(config).callEnd(callState, end)
    }
}
