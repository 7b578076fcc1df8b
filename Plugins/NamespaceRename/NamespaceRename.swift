// namespace-rename: the bundled plugin behind the Go proxy's `namespaceTranslation` key. A 1:1 map of local and
// remote namespace names; each call's names are renamed toward the cluster the call goes to, and its responses back.
//
//     plugins:
//       - name: namespace-rename
//         options:
//           mappings:
//             - { local: orders, remote: orders.acct123 }
//
// Which way a map applies follows the side: on the outbound side (calls the local Temporal makes) requests go
// local -> remote and responses remote -> local; on the inbound side the reverse. Every namespace-name field is
// renamed wherever it occurs, by the schema (`WalkRules.temporalNamespaces()`): string fields named `namespace`,
// `workflow_namespace`, `parent_workflow_namespace`, `NamespaceInfo.name`, also inside the history events that
// `DataBlob` fields carry; and the `temporal-namespace` request header. Namespace ids are never touched; names not
// in the map pass unchanged; a message in which nothing matched is forwarded as it came, without a copy. A call
// whose request carries `s2s-request-translation: false` is left untouched.
//
// This target holds the logic; `NamespaceRenameExport` exports it as `libnamespace-rename.so`.

import PluginKit

public final class NamespaceRename: TranslatorPlugin {
    public static let name = "namespace-rename"
    public static let version = "1.0.0"
    public static let description = "Renames namespaces between the local and the remote cluster (namespaceTranslation)"
    public static let needsSchema = true

    /// The only services whose messages carry namespace names the remote side must not see untranslated.
    static let translatedServices = [
        "/temporal.api.workflowservice.v1.WorkflowService/",
        "/temporal.api.operatorservice.v1.OperatorService/",
        "/temporal.server.api.adminservice.v1.AdminService/",
    ]

    public struct CallState {
        var request: WalkPlan?
        var response: WalkPlan?
        /// Old name -> new name for requests and for responses of this call.
        let requestMap: [String: String]
        let responseMap: [String: String]
    }

    let localToRemote: [String: String]
    let remoteToLocal: [String: String]
    let walker = SchemaDerived<ProtoWalker>()
    let host: PluginHost
    let renamed: PluginCounter

    public init(options: PluginOptions, host: PluginHost) throws {
        self.host = host
        var localToRemote: [String: String] = [:]
        var remoteToLocal: [String: String] = [:]
        var localEntry: [String: Int] = [:]
        var remoteEntry: [String: Int] = [:]
        for (index, mapping) in try options.requiredOptionsArray(forKey: "mappings").enumerated() {
            let local = try mapping.requiredString(forKey: "local")
            let remote = try mapping.requiredString(forKey: "remote")
            guard !local.isEmpty, !remote.isEmpty else {
                throw PluginConfigError("mappings[\(index)]: local and remote must be non-empty namespace names")
            }
            if let earlier = localEntry[local] {
                throw PluginConfigError("mappings[\(earlier)] and mappings[\(index)] both map the local namespace \(local); a mapping is one to one")
            }
            if let earlier = remoteEntry[remote] {
                throw PluginConfigError("mappings[\(earlier)] and mappings[\(index)] both map the remote namespace \(remote); a mapping is one to one")
            }
            localEntry[local] = index
            remoteEntry[remote] = index
            localToRemote[local] = remote
            remoteToLocal[remote] = local
        }
        self.localToRemote = localToRemote
        self.remoteToLocal = remoteToLocal
        renamed = try host.counter(name: "namespace_renames_total", help: "Namespace names renamed in messages and headers")
    }

    public func schemaReady(_ fileDescriptorSet: UnsafeRawBufferPointer) throws {
        walker.value = try ProtoSchema(fileDescriptorSet: fileDescriptorSet).walker(rules: .temporalNamespaces())
    }

    public func wants(method: String, side: CallSide) -> Wants {
        guard !localToRemote.isEmpty, Self.translatedServices.contains(where: method.hasPrefix) else { return .nothing }
        return [.allMessages, .errorTrailers]
    }

    public func startCall(_ call: borrowing CallStart) throws -> CallDecision<CallState> {
        let outbound = call.side == .outbound
        let requestMap = outbound ? localToRemote : remoteToLocal
        let responseMap = outbound ? remoteToLocal : localToRemote
        guard call.translationRequested else {
            return .proceed(with: CallState(request: nil, response: nil, requestMap: [:], responseMap: [:]))
        }
        if let namespace = call.header("temporal-namespace"), let new = requestMap[namespace] {
            try call.setHeader("temporal-namespace", new)
            renamed.add()
        }
        // A method the schema does not know (a Temporal newer than the schema) passes untouched.
        let plans = walker.value?.plans(method: call.method)
        return .proceed(with: CallState(
            request: plans?.request,
            response: plans?.response,
            requestMap: requestMap,
            responseMap: responseMap
        ))
    }

    public func message(_ message: borrowing MessageView, state: inout CallState) throws -> MessageDecision {
        let isRequest = message.direction == .request
        guard let plan = isRequest ? state.request : state.response, plan.canMatch else { return .unchanged }
        if message.isCompressed {
            throw PluginFailure(
                "namespace-rename cannot translate a message compressed in an encoding the proxy does not inflate (it"
                    + " inflates gzip and deflate); use one of those, or none, between Temporal and the proxy")
        }
        let map = isRequest ? state.requestMap : state.responseMap
        var count = 0
        let output = try plan.rewrite(message.payload) { target in
            guard let new = map[target.value] else { return nil }
            count += 1
            return new
        }
        guard let output else { return .unchanged }
        renamed.add(Double(count))
        return .replaced(output)
    }

    /// Error details: the trailers' `grpc-status-details-bin` (a google.rpc.Status) carries Temporal's failure
    /// messages as `Any`s, and those of namespaces name one (`NamespaceNotFoundFailure`, ...). Renamed like the
    /// response, so that the caller sees its own names.
    public func responseMetadata(_ metadata: borrowing ResponseMetadata, state: inout CallState) throws
        -> MetadataDecision
    {
        guard metadata.kind == .trailers, !state.responseMap.isEmpty,
              let details = metadata.headerBytes(Self.statusDetailsHeader)
        else { return .proceed }
        let map = state.responseMap
        var count = 0
        let rewritten = try StatusDetails.renameNamespaces(in: details) { name in
            guard let new = map[name] else { return nil }
            count += 1
            return new
        }
        guard let rewritten else { return .proceed }
        try metadata.setHeader(Self.statusDetailsHeader, bytes: rewritten)
        renamed.add(Double(count))
        return .proceed
    }

    static let statusDetailsHeader = "grpc-status-details-bin"
}

/// The namespace names inside a gRPC status's details (google.rpc.Status: 3 = repeated google.protobuf.Any, whose
/// 1 = type_url and 2 = value). Temporal's error details are not in the schema the server reflects, so the fields
/// are known here: `namespace` is field 1 of each failure below (temporal/api/errordetails/v1/message.proto).
enum StatusDetails {
    static let namespaceFailures: Set<String> = [
        "temporal.api.errordetails.v1.NamespaceNotFoundFailure",
        "temporal.api.errordetails.v1.NamespaceNotActiveFailure",
        "temporal.api.errordetails.v1.NamespaceInvalidStateFailure",
        "temporal.api.errordetails.v1.NamespaceUnavailableFailure",
    ]

    /// `status` with each namespace name `rename` maps replaced, or nil when nothing changed.
    ///
    /// - Throws: ``ProtoWireError`` for a status that is not a well-formed message on the path to a name.
    static func renameNamespaces(in status: [UInt8], _ rename: (String) -> String?) throws(ProtoWireError) -> [UInt8]? {
        var rewriter = ProtoWireRewriter(original: status)
        var scanner = ProtoWireScanner(bytes: status)
        while let detail = try scanner.next() {
            guard detail.fieldNumber == 3, detail.wireType == .lengthDelimited else { continue }
            var any = ProtoWireScanner(bytes: status, subMessageOf: detail)
            var typeURL: String?
            var value: ProtoWireField?
            while let part = try any.next() {
                guard part.wireType == .lengthDelimited else { continue }
                if part.fieldNumber == 1 { typeURL = String(decoding: status[part.payloadRange], as: UTF8.self) }
                if part.fieldNumber == 2 { value = part }
            }
            guard let typeURL, let value,
                  namespaceFailures.contains(String(typeURL.split(separator: "/").last ?? ""))
            else { continue }
            var failure = ProtoWireScanner(bytes: status, subMessageOf: value)
            while let field = try failure.next() {
                guard field.fieldNumber == 1, field.wireType == .lengthDelimited,
                      let new = rename(String(decoding: status[field.payloadRange], as: UTF8.self))
                else { continue }
                try rewriter.replacePayload(of: field, with: Array(new.utf8))
            }
        }
        return rewriter.hasEdits ? try rewriter.rebuiltBytes() : nil
    }
}
