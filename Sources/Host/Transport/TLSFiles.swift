// Reading the files a `tls:` block names: the own certificate chain, its private key, and the CA bundle that
// verifies the peer.
//
// Owns `TLSFiles` and `TLSSetupError`. Every failure names the key of the block it is about and says what to do;
// nothing here opens a connection or fetches anything from the network. The CA bundle follows the Go proxy's rules
// (encryption/certificate.go): PEM blocks that are not certificates are skipped, a certificate that does not parse
// is an error, and only certificates with the CA basic constraint count; a bundle without one is refused.

import Foundation
import NIOSSL

/// Why a `tls:` block cannot be turned into a working TLS setup.
public struct TLSSetupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The block's key path as the caller labelled it, e.g. `clusterConnections[0].remote.tcpServer.tls`.
    public var label: String
    /// The key inside the block the problem is about (`certificatePath`, `remoteCAPath`, ...); empty when it is
    /// about the block as a whole.
    public var key: String
    /// What is wrong and what to do about it.
    public var message: String

    /// Creates the error for `key` of the block `label`.
    public init(label: String, key: String, message: String) {
        self.label = label
        self.key = key
        self.message = message
    }

    /// `label.key: message`.
    public var description: String {
        key.isEmpty ? "\(label): \(message)" : "\(label).\(key): \(message)"
    }
}

/// Loads certificates, keys and CA bundles for one `tls:` block, reporting failures against its keys.
struct TLSFiles {
    /// The block's key path, for errors.
    let label: String

    /// The certificates of the PEM file at `path` (leaf first, as written), read for `key`.
    func certificateChain(at path: String, key: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
        let blocks = try pemBlocks(at: path, key: key)
        let certificates = try certificates(in: blocks, of: path, key: key)
        guard !certificates.isEmpty else {
            throw failure(key, "\"\(path)\" holds no PEM CERTIFICATE block; give the PEM file of the certificate")
        }
        return certificates
    }

    /// The private key in the PEM file at `path`, read for `key`.
    func privateKey(at path: String, key: String) throws(TLSSetupError) -> NIOSSLPrivateKey {
        let bytes = try contents(of: path, key: key)
        do {
            return try NIOSSLPrivateKey(bytes: Array(bytes), format: .pem)
        } catch {
            throw failure(
                key,
                "\"\(path)\" holds no usable PEM private key (RSA, EC or PKCS#8; encrypted keys are not supported)"
            )
        }
    }

    /// The CA certificates of the bundle at `location`, read for `key`, by the Go proxy's rules.
    func caBundle(at location: String, key: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
        let lowered = location.lowercased()
        if lowered.hasPrefix("https://") {
            throw failure(
                key,
                "fetching a CA bundle from a URL is not supported by this build; download \"\(location)\" "
                    + "and give the path of the file"
            )
        }
        if lowered.hasPrefix("http://") {
            throw failure(
                key,
                "a CA bundle over plain http could be altered on the way; give the path of a local file"
            )
        }
        let blocks = try pemBlocks(at: location, key: key)
        let authorities = try certificates(in: blocks, of: location, key: key).filter(\.isCertificateAuthority)
        guard !authorities.isEmpty else {
            throw failure(
                key,
                "no usable CA certificates found in bundle \"\(location)\": it needs at least one certificate "
                    + "with the CA basic constraint (the issuer of the peer's certificate, not the peer's own)"
            )
        }
        return authorities
    }

    // MARK: - Files and PEM blocks

    private func contents(of path: String, key: String) throws(TLSSetupError) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure(
                key, "no such file \"\(path)\" (a relative path starts at the current directory, as in the Go proxy)"
            )
        }
        guard !isDirectory.boolValue else {
            throw failure(key, "\"\(path)\" is a directory; name the PEM file in it")
        }
        guard FileManager.default.isReadableFile(atPath: path),
              let data = FileManager.default.contents(atPath: path) else {
            throw failure(key, "cannot read \"\(path)\": permission denied; make it readable by this user")
        }
        return data
    }

    private func pemBlocks(at path: String, key: String) throws(TLSSetupError) -> [PEMBlock] {
        let data = try contents(of: path, key: key)
        return PEMBlock.blocks(in: String(decoding: data, as: UTF8.self))
    }

    /// Parses the CERTIFICATE blocks; other block types (keys, parameters) are skipped.
    private func certificates(
        in blocks: [PEMBlock],
        of path: String,
        key: String
    ) throws(TLSSetupError) -> [NIOSSLCertificate] {
        var certificates: [NIOSSLCertificate] = []
        for (index, block) in blocks.enumerated() where block.label == "CERTIFICATE" {
            guard let der = block.der, let certificate = try? NIOSSLCertificate(bytes: der, format: .der) else {
                throw failure(
                    key,
                    "PEM block \(index + 1) of \"\(path)\" is labelled CERTIFICATE but does not parse as one"
                )
            }
            certificates.append(certificate)
        }
        return certificates
    }

    private func failure(_ key: String, _ message: String) -> TLSSetupError {
        TLSSetupError(label: label, key: key, message: message)
    }
}

/// One `-----BEGIN label----- ... -----END label-----` block of a PEM file.
struct PEMBlock: Equatable {
    /// The word(s) after BEGIN, e.g. `CERTIFICATE` or `PRIVATE KEY`.
    var label: String
    /// The decoded body; nil when it is not valid base64.
    var der: [UInt8]?

    /// Every complete block of `text`, in order; text outside blocks and unterminated blocks are ignored, as PEM
    /// readers do.
    static func blocks(in text: String) -> [PEMBlock] {
        var blocks: [PEMBlock] = []
        var open: (label: String, body: String)?
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let label = line.enclosedLabel(after: "-----BEGIN ") {
                open = (label, "")
            } else if let label = line.enclosedLabel(after: "-----END "), let current = open {
                if label == current.label {
                    let der = Data(base64Encoded: current.body).map { Array($0) }
                    blocks.append(PEMBlock(label: label, der: der))
                }
                open = nil
            } else if open != nil, !line.contains(":") {
                // Lines with a colon are RFC 1421 headers (Proc-Type, DEK-Info), not base64.
                open?.body += line
            }
        }
        return blocks
    }
}

private extension String {
    /// `X` for a line `<prefix>X-----`, else nil.
    func enclosedLabel(after prefix: String) -> String? {
        guard hasPrefix(prefix), hasSuffix("-----"), count >= prefix.count + 5 else { return nil }
        return String(dropFirst(prefix.count).dropLast(5))
    }
}

extension NIOSSLCertificate {
    /// Whether the certificate carries the basic-constraints extension with `cA` true (RFC 5280 4.2.1.9), the
    /// test Go's `x509.Certificate.IsCA` makes.
    ///
    /// swift-nio-ssl lists a certificate's extensions only through its underscored `_extensions` API; the
    /// extension value is decoded here (SEQUENCE { BOOLEAN cA DEFAULT FALSE, INTEGER pathLen OPTIONAL }).
    var isCertificateAuthority: Bool {
        guard let basicConstraints = NIOSSLObjectIdentifier("2.5.29.19") else { return false }
        for ext in _extensions where ext.objectIdentifier == basicConstraints {
            let value = ext.data.withUnsafeBufferPointer { Array($0) }
            return Self.basicConstraintsSayCA(value)
        }
        return false
    }

    /// Reads `cA` from a DER basic-constraints value; anything malformed counts as "not a CA".
    static func basicConstraintsSayCA(_ der: [UInt8]) -> Bool {
        // SEQUENCE with a short-form length (basic constraints are a few bytes), then an optional BOOLEAN.
        guard der.count >= 2, der[0] == 0x30, der[1] < 0x80, Int(der[1]) == der.count - 2 else { return false }
        guard der.count >= 5, der[2] == 0x01, der[3] == 0x01 else { return false }
        return der[4] != 0
    }
}
