// An example translator plugin written with PluginKit: the smallest plugin that shows every part of the API a
// real one uses. Built as the dynamic library product `example-header-stamp` (libexample-header-stamp.so).
//
// It stamps a request header on every call and rejects the calls of configured methods, counting both:
//
//     plugins:
//       - path: /path/to/libexample-header-stamp.so
//         options:
//           header: x-s2s-proxy          # default "x-s2s-proxy"
//           value: cluster-a             # required
//           rejectMethods:               # default: none
//             - /temporal.api.workflowservice.v1.WorkflowService/DeleteNamespace

import PluginKit

/// One instance per chain entry. Immutable after `init`, so it is safe to share between the proxy's threads.
final class HeaderStampPlugin: TranslatorPlugin {
    // How the plugin introduces itself to the host (`s2s-proxy plugin inspect` prints these).
    static let name = "example-header-stamp"
    static let version = "1.0.0"
    static let description = "Adds a request header to every call and rejects the calls of configured methods"

    private let header: String
    private let value: String
    private let rejectedMethods: Set<String>
    private let host: PluginHost
    private let callsStamped: PluginCounter
    private let callsRejected: PluginCounter

    /// Reads and checks the options. Anything wrong is reported here, when the proxy starts, with what to do.
    init(options: PluginOptions, host: PluginHost) throws {
        header = try options.string(forKey: "header") ?? "x-s2s-proxy"
        value = try options.requiredString(forKey: "value")
        rejectedMethods = Set(try options.stringArray(forKey: "rejectMethods") ?? [])
        guard !header.isEmpty, header == header.lowercased(), !header.hasPrefix(":") else {
            throw PluginConfigError(
                "options.header must be a lowercase header name such as x-s2s-proxy, not '\(header)'"
            )
        }
        for method in rejectedMethods where !method.hasPrefix("/") {
            throw PluginConfigError(
                "options.rejectMethods: '\(method)' is not a method path like /package.Service/Method"
            )
        }
        self.host = host
        // Metrics are defined here and recorded later from any thread.
        callsStamped = try host.counter(name: "header_stamp_calls_total", help: "Calls that got the header")
        callsRejected = try host.counter(name: "header_stamp_rejected_total", help: "Calls rejected by method")
    }

    /// Every call on both sides, but no messages: the host then never deframes or copies a message for us.
    func wants(method: String, side: CallSide) -> Wants {
        .call
    }

    /// Rejects a configured method, otherwise stamps the header. This plugin keeps no per-call state, so it
    /// answers `.proceed`; a plugin with state would declare `typealias CallState = ...` and answer
    /// `.proceed(with: state)`.
    func startCall(_ call: borrowing CallStart) throws -> CallDecision<Void> {
        let method = call.method
        if rejectedMethods.contains(method) {
            callsRejected.add()
            // The log line is built only when debug logging is on.
            host.debug("rejecting \(method) from the \(call.side) side")
            return .rejected(.permissionDenied, "\(method) is not allowed through this proxy")
        }
        // A refused edit throws; `try` hands it to the host as a plugin failure (the entry's onError decides).
        try call.setHeader(header, value)
        callsStamped.add()
        return .proceed
    }
}

/// The one exported C symbol: the host calls it after loading the library.
@c(s2s_plugin_entry)
public func s2sPluginEntry(_ hostMajor: UInt32, _ hostMinor: UInt32) -> UnsafeRawPointer? {
    PluginExport.table(for: HeaderStampPlugin.self, hostMajor: hostMajor, hostMinor: hostMinor)
}
