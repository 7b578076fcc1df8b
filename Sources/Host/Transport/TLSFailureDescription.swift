// Short, operator-facing wording for TLS failures, for logs and `UNAVAILABLE` messages.
//
// Owns `TLSFailureDescription`. BoringSSL reports failures as stacks of `error:XXXX:lib:func:REASON at file:line`
// entries; the operator needs the REASON and what it usually means, not the stack.

import NIOSSL

enum TLSFailureDescription {
    /// Describes a TLS error, e.g. "the client sent no certificate; ... (PEER_DID_NOT_RETURN_A_CERTIFICATE)"; other
    /// errors as they describe themselves.
    static func describe(_ error: Error) -> String {
        switch error {
        case NIOSSLError.handshakeFailed(let boringError), NIOSSLError.shutdownFailed(let boringError):
            return describe(boringError)
        case let boringError as BoringSSLError:
            return describe(boringError)
        case NIOSSLError.uncleanShutdown:
            return "the peer closed the connection without ending TLS (no close_notify)"
        case let extra as NIOSSLExtraError where extra == .failedToValidateHostname:
            return "the server's certificate is not issued for the expected name (\(extra))"
        default:
            return "\(error)"
        }
    }

    /// The reasons of a BoringSSL error stack, explained where the reason is a common one.
    static func describe(_ error: BoringSSLError) -> String {
        guard case .sslError(let stack) = error else { return "\(error)" }
        if stack.contains(.eofDuringHandshake) {
            return "the peer closed the connection before the TLS handshake finished"
        }
        let reasons = stack.compactMap { reason(in: "\($0)") }
        guard let first = reasons.first else {
            return stack.map { "\($0)" }.joined(separator: "; ")
        }
        let codes = reasons.joined(separator: ", ")
        guard let meaning = meaning(of: first) else { return codes }
        return "\(meaning) (\(codes))"
    }

    /// `REASON` from `Error: 1234 error:100000f7:SSL routines:OPENSSL_internal:REASON at file:line`.
    static func reason(in entry: String) -> String? {
        guard let marker = entry.range(of: "OPENSSL_internal:") else { return nil }
        let rest = entry[marker.upperBound...]
        let reason = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        return reason.isEmpty ? nil : String(reason)
    }

    private static func meaning(of reason: String) -> String? {
        switch reason {
        case "WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "UNKNOWN_PROTOCOL":
            return "the peer does not speak TLS (plain TCP on a TLS port, or TLS on a plain one)"
        case "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "the client sent no certificate; this listener requires one issued by a CA of its remoteCAPath"
        case "CERTIFICATE_VERIFY_FAILED":
            return "the peer's certificate is not issued by a trusted CA (remoteCAPath, or the system store)"
        case "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_DECRYPT_ERROR",
             "SSLV3_ALERT_CERTIFICATE_UNKNOWN":
            return "the peer refused this side's certificate"
        case "TLSV1_ALERT_CERTIFICATE_REQUIRED":
            return "the peer requires a client certificate; set certificatePath and keyPath"
        case "NO_APPLICATION_PROTOCOL", "TLSV1_ALERT_NO_APPLICATION_PROTOCOL":
            return "no common ALPN protocol (this side speaks h2)"
        case "UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION":
            return "no common TLS version (this side needs TLS 1.2 or later)"
        default:
            return nil
        }
    }
}
