// The Go proxy's gRPC server families (`temporal_s2s_proxy_grpc_server_handled_total` and
// `temporal_s2s_proxy_grpc_server_handling_seconds`, from go-grpc-middleware), rendered from the same per-method
// figures as `s2s_proxy_calls_total`, so that dashboards built on the Go proxy keep working.
//
// Differences, each deliberate: `grpc_type` comes from what Temporal's API declares (its few streaming methods are
// listed here; every other method is unary), since the proxy compiles in no service definitions; a call that ended
// without a status (a reset or a lost connection) counts as `Canceled`; `config_name` is added, since one process
// may serve several cluster connections whose series would otherwise collide. `grpc_server_started_total` and the
// message counters are not rendered: the proxy counts calls when they end.

extension ProxyMetrics {
    /// go-grpc-middleware's default histogram bounds (Prometheus' default buckets); each is one of
    /// `CallMetrics.durationBounds`, so the cumulative counts are exact.
    static let goHandlingBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Where each of `goHandlingBounds` stands in `CallMetrics.durationBounds`.
    static let goBoundIndices: [Int] = goHandlingBounds.map { bound in
        CallMetrics.durationBounds.firstIndex(of: bound)!
    }

    /// Temporal's methods that are not unary, by `:path`.
    static let goStreamingMethods: [String: String] = [
        "/temporal.server.api.adminservice.v1.AdminService/StreamWorkflowReplicationMessages": "bidi_stream",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "bidi_stream",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "bidi_stream",
        "/grpc.health.v1.Health/Watch": "server_stream",
    ]

    func renderGoGRPCServer(_ listeners: [(listener: CallMetrics, snapshot: CallMetrics.Snapshot)],
                            into text: inout PrometheusText) {
        let handled = "temporal_s2s_proxy_grpc_server_handled_total"
        let handling = "temporal_s2s_proxy_grpc_server_handling_seconds"
        typealias Series = (labels: [(String, String)], stats: CallMetrics.MethodStats)
        var series: [Series] = []
        for (listener, snapshot) in listeners {
            for method in snapshot.methods.keys.sorted() where method != CallMetrics.nonGRPCMethod {
                let (service, name) = Self.goServiceAndMethod(method)
                let labels = [
                    ("grpc_type", Self.goStreamingMethods[method] ?? "unary"), ("grpc_service", service),
                    ("grpc_method", name), ("direction", listener.direction), ("config_name", listener.connection),
                ]
                series.append((labels, snapshot.methods[method]!))
            }
        }
        text.family(handled, .counter, help: "Calls completed, by method and gRPC code (the Go proxy's family).")
        for (labels, stats) in series {
            var byCode: [String: UInt64] = [:]
            for (code, count) in stats.callsByCode {
                byCode[Self.goCodeName(code), default: 0] += count
            }
            for code in byCode.keys.sorted() {
                text.sample(handled, labels + [("grpc_code", code)], Double(byCode[code]!))
            }
        }
        text.family(handling, .histogram, help: "Time to complete a call, by method (the Go proxy's family).")
        for (labels, stats) in series {
            let cumulative = PrometheusText.cumulative(stats.durationBuckets)
            text.histogram(handling, labels, bounds: Self.goHandlingBounds,
                           cumulativeBuckets: Self.goBoundIndices.map { cumulative[$0] },
                           sum: stats.durationSum, count: cumulative.last ?? 0)
        }
    }

    /// `/pkg.Service/Method` as go-grpc-middleware labels it: (`pkg.Service`, `Method`); `other` stays `other`.
    static func goServiceAndMethod(_ path: String) -> (service: String, method: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == 2 else { return (path, path) }
        return (String(parts[0]), String(parts[1]))
    }

    /// grpc-go's spelling of a status code (`OK`, `Unavailable`, `DeadlineExceeded`); no status is `Canceled`.
    static func goCodeName(_ code: Int32) -> String {
        let names = [
            "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
            "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
            "Internal", "Unavailable", "DataLoss", "Unauthenticated",
        ]
        if code < 0 { return "Canceled" }
        return code < names.count ? names[Int(code)] : "Code(\(code))"
    }
}
