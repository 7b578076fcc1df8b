// The exported plugin types of this image: one table and one config factory per type, built once and kept for
// the life of the process (the ABI says the table is static and the host never unloads a plugin).

import PluginABI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Creates one chain entry's config for the host (retained), or says why not.
typealias ConfigFactory = (HostServices, OpaquePointer?, s2s_bytes_t)
    -> Result<UnsafeMutableRawPointer, PluginConfigError>

/// `@unchecked Sendable`: all state is behind `mutex`; tables, once built, are immutable.
final class ExportRegistry: @unchecked Sendable {
    static let shared = ExportRegistry()

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var tables: [ObjectIdentifier: UnsafePointer<s2s_plugin_api_t>] = [:]
    private var factories: [UnsafeRawPointer: ConfigFactory] = [:]

    private init() {
        pthread_mutex_init(mutex, nil)
    }

    /// The table of `Plugin`, built on first use; nil (with the reason) if the type cannot be exported.
    func table<Plugin: TranslatorPlugin>(
        for type: Plugin.Type, box: @escaping (ExportedConfig<Plugin>) -> ExportedConfigBox
    ) -> Result<UnsafePointer<s2s_plugin_api_t>, PluginConfigError> {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let table = tables[ObjectIdentifier(type)] {
            return .success(table)
        }
        // The header's rule, checked before anything is kept for the type (a NUL inside the name fails it too).
        guard !Plugin.name.utf8.contains(0), Plugin.name.withCString({ s2s_plugin_name_is_valid($0) }) != 0 else {
            return .failure(PluginConfigError(
                "a plugin's name must be non-empty and hold only ASCII letters, digits, '-' and '_' (it names the"
                    + " plugin in logs, metric labels and `name:`), not \"\(Plugin.name)\""
            ))
        }
        guard let name = Self.staticCString(Plugin.name), let version = Self.staticCString(Plugin.version) else {
            return .failure(PluginConfigError("a plugin's version must be non-empty and contain no NUL"))
        }
        let description = Self.staticCString(Plugin.description)
        let table = UnsafeMutablePointer<s2s_plugin_api_t>.allocate(capacity: 1)
        table.initialize(to: s2s_plugin_api_t(
            struct_size: UInt32(MemoryLayout<s2s_plugin_api_t>.size),
            abi_major: UInt16(S2S_PLUGIN_ABI_MAJOR),
            abi_minor: UInt16(S2S_PLUGIN_ABI_MINOR),
            name: name,
            version: version,
            description: description,
            config_new: CThunks.configNew,
            config_destroy: CThunks.configDestroy,
            schema_ready: Plugin.needsSchema ? CThunks.schemaReady : nil,
            wants: CThunks.wants,
            call_start: CThunks.callStart,
            on_message: CThunks.onMessage,
            call_end: CThunks.callEnd,
            swift_release: Self.staticCString(SwiftRelease.current),
            on_response_metadata: CThunks.onResponseMetadata
        ))
        tables[ObjectIdentifier(type)] = UnsafePointer(table)
        factories[UnsafeRawPointer(table)] = { services, host, options in
            ExportedConfig<Plugin>.make(services: services, host: host, options: options, box: box)
        }
        return .success(UnsafePointer(table))
    }

    /// The factory of the type whose table is `table`, or nil if this image did not export it.
    func factory(table: UnsafePointer<s2s_plugin_api_t>) -> ConfigFactory? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return factories[UnsafeRawPointer(table)]
    }

    /// A C copy of `string` that lives as long as the process; nil if empty or containing NUL.
    private static func staticCString(_ string: String) -> UnsafePointer<CChar>? {
        guard !string.isEmpty, !string.utf8.contains(0) else { return nil }
        return UnsafePointer(strdup(string))
    }
}
