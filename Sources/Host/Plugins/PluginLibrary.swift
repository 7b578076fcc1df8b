// A translator plugin's shared object, loaded once per process and build, from a private copy of the file
// (PluginFileCopies): a file rebuilt at the same path is loaded anew by the next reload, and each build is named by
// the SHA-256 of its bytes.
//
// Loading follows the ABI's rules (s2s-plugin-sdk/Sources/PluginABI/include/s2s_plugin.h): dlopen with RTLD_NOW | RTLD_LOCAL |
// RTLD_NODELETE, one call of `s2s_plugin_entry`, then checks of the returned table before anything else touches
// it: the ABI major must be ours, the table must be large enough for the 1.0 fields, and the hooks every plugin
// needs must be there. Each failure becomes a `PluginLoadError` that says what is wrong with which file and what to
// do. A library is never closed: the runtime of a Swift or Go plugin cannot be unloaded safely.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import PluginABI
import enum PluginKit.SwiftRelease

/// What went wrong while loading a plugin file.
public struct PluginLoadError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case fileMissing
        case notSharedObject
        case entrySymbolMissing
        case entryRefused
        case abiMismatch(pluginMajor: Int, pluginMinor: Int)
        case malformedTable
        case notFoundByName(searched: [String])
        /// An ELF shared object for another machine or word size (glibc's dlopen says "No such file" for it).
        case wrongArchitecture(found: String, expected: String)
        /// A Swift plugin built with another Swift release than the host.
        case swiftReleaseMismatch(plugin: String, host: String)
    }

    public let path: String
    public let kind: Kind
    public let detail: String

    public var description: String {
        let host = "\(S2S_PLUGIN_ABI_MAJOR).\(S2S_PLUGIN_ABI_MINOR)"
        switch kind {
        case .fileMissing:
            return "plugin file \(path) does not exist (\(detail)); check the path, or name a bundled plugin with `name:`"
        case .notSharedObject:
            return "plugin file \(path) is not a loadable shared object: \(detail)"
        case .entrySymbolMissing:
            return "plugin file \(path) has no `\(S2S_PLUGIN_ENTRY_SYMBOL)` symbol, so it is not an s2s-proxy plugin"
                + " (a plugin exports it; see docs/PLUGINS.md)"
        case .entryRefused:
            return "plugin \(path) refused to load into this host (plugin ABI \(host)); its \(S2S_PLUGIN_ENTRY_SYMBOL) returned NULL"
                + " (the plugin may have printed why on stderr)"
        case .abiMismatch(let major, let minor):
            return "plugin \(path) was built for plugin ABI \(major).\(minor), but this s2s-proxy speaks plugin ABI \(host);"
                + " rebuild the plugin against this host's s2s_plugin.h (major versions must match)"
        case .malformedTable:
            return "plugin \(path) returned a malformed table: \(detail)"
        case .wrongArchitecture(let found, let expected):
            return "plugin file \(path) is built for \(found), but this s2s-proxy runs on \(expected);"
                + " build the plugin for \(expected)"
        case .swiftReleaseMismatch(let plugin, let host):
            return "plugin \(path) was built with Swift \(plugin), but this s2s-proxy with Swift \(host); a Swift plugin"
                + " runs on the proxy's Swift runtime, so rebuild it with Swift \(host) (`s2s-proxy --version` names"
                + " the release)"
        case .notFoundByName(let searched):
            return "no bundled plugin named \(path): looked for \(PluginLibrary.fileName(forBundledName: path)) in "
                + searched.joined(separator: ", ")
                + "; install it there, add its directory to S2S_PROXY_PLUGIN_PATH, or give `path:` instead"
        }
    }
}

/// A loaded plugin file and the table its entry point returned.
public final class PluginLibrary: @unchecked Sendable {
    /// The path it was loaded from, as resolved (absolute when found by name).
    public let path: String
    /// The table; plugin-owned, static, valid until the process exits.
    let api: UnsafePointer<s2s_plugin_api_t>
    public let name: String
    public let version: String
    public let pluginDescription: String
    public let abiMajor: Int
    public let abiMinor: Int
    /// Whether the plugin needs the Temporal schema before it can serve calls.
    public let needsSchema: Bool
    /// The Swift release that built the plugin (ABI 1.1, PluginKit plugins); nil for C plugins and 1.0 tables.
    public let swiftRelease: String?
    /// SHA-256 of the file's bytes as loaded (hex; compare with `sha256sum`): which build of the file runs.
    public let sha256: String
    /// The file the process mapped: the private copy of this build, or `path` itself.
    public let mappedPath: String
    /// Why the build was loaded from `path` itself rather than from a private copy; nil when from a copy.
    public let inPlaceReason: String?

    /// The table's size as the plugin declared it: fields past it are not read.
    let tableSize: Int

    /// on_response_metadata (ABI 1.1), if the plugin's table has room for it and sets it.
    var responseMetadataHook: ResponseMetadataHook? {
        let end = Self.offset(of: \.on_response_metadata) + MemoryLayout<ResponseMetadataHook?>.size
        return tableSize >= end ? api.pointee.on_response_metadata : nil
    }

    /// The first 12 hex digits of `sha256`, for log lines.
    public var shortSHA256: String { String(sha256.prefix(12)) }

    private init(
        path: String, api: UnsafePointer<s2s_plugin_api_t>, sha256: String, mappedPath: String, inPlaceReason: String?
    ) throws {
        self.path = path
        self.api = api
        self.sha256 = sha256
        self.mappedPath = mappedPath
        self.inPlaceReason = inPlaceReason
        // Only the versioned prefix may be read before the version and size are known to be ours.
        let prefix = UnsafeRawPointer(api)
        let structSize = prefix.loadUnaligned(as: UInt32.self)
        tableSize = Int(structSize)
        abiMajor = Int(prefix.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        abiMinor = Int(prefix.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        guard abiMajor == Int(S2S_PLUGIN_ABI_MAJOR) else {
            throw PluginLoadError(path: path, kind: .abiMismatch(pluginMajor: abiMajor, pluginMinor: abiMinor), detail: "")
        }
        // The 1.0 table ends where 1.1's first field begins; fields past the plugin's struct_size are not read.
        let required = Self.offset(of: \.swift_release)
        guard Int(structSize) >= required else {
            throw PluginLoadError(
                path: path, kind: .malformedTable,
                detail: "struct_size \(structSize) is smaller than the \(required) bytes of ABI 1.0"
            )
        }
        var missing: [String] = []
        if api.pointee.name == nil { missing.append("name") }
        if api.pointee.version == nil { missing.append("version") }
        if api.pointee.config_new == nil { missing.append("config_new") }
        if api.pointee.wants == nil { missing.append("wants") }
        if api.pointee.call_start == nil { missing.append("call_start") }
        guard missing.isEmpty else {
            throw PluginLoadError(path: path, kind: .malformedTable, detail: "missing \(missing.joined(separator: ", "))")
        }
        name = String(cString: api.pointee.name)
        version = String(cString: api.pointee.version)
        pluginDescription = api.pointee.description.map { String(cString: $0) } ?? ""
        needsSchema = api.pointee.schema_ready != nil
        let releaseEnd = Self.offset(of: \.swift_release) + MemoryLayout<UnsafePointer<CChar>?>.size
        swiftRelease = Int(structSize) >= releaseEnd ? api.pointee.swift_release.map { String(cString: $0) } : nil
        if let swiftRelease, swiftRelease != SwiftRelease.current {
            throw PluginLoadError(
                path: path, kind: .swiftReleaseMismatch(plugin: swiftRelease, host: SwiftRelease.current), detail: ""
            )
        }
        guard !name.isEmpty else {
            throw PluginLoadError(path: path, kind: .malformedTable, detail: "empty name")
        }
        guard s2s_plugin_name_is_valid(api.pointee.name) != 0 else {
            throw PluginLoadError(
                path: path, kind: .malformedTable,
                detail: "name \"\(name)\" has characters other than ASCII letters, digits, '-' and '_' (logs, metric labels"
                    + " and `name:` use it)"
            )
        }
    }


    private static func offset(of field: PartialKeyPath<s2s_plugin_api_t>) -> Int {
        MemoryLayout<s2s_plugin_api_t>.offset(of: field)!
    }

    // MARK: Loading

    /// What identifies a file's current contents cheaply, to skip hashing a file that has not changed.
    private struct FileStamp: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int64

        init(_ status: stat) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
            size = Int64(status.st_size)
            modified = Int64(status.st_mtim.tv_sec)
            modifiedNanoseconds = Int64(status.st_mtim.tv_nsec)
        }
    }

    /// One build of a file loaded in this process.
    private struct LoadedBuild {
        var stamp: FileStamp
        let library: PluginLibrary
    }

    /// Per file (its real path), every build of it loaded so far, the latest last.
    private static let loaded = NIOLockedValueBox<[String: [LoadedBuild]]>([:])

    /// A library and how it relates to what was loaded from the same file before.
    public struct Loading: Sendable {
        public let library: PluginLibrary
        /// Whether this load mapped the build (false: it had been loaded before).
        public let isNew: Bool
        /// The SHA-256 of the build loaded from this file before, when the file now holds another build.
        public let replacedBuild: String?
    }

    /// Loads the plugin at `path`: once per process and build. A later load of an unchanged file returns the same
    /// library; once the file holds another build (rebuilt, reinstalled), the new build is loaded beside the old one,
    /// so that calls in flight finish on the old code and new ones use the new. Builds are loaded from private
    /// copies (`PluginFileCopies`), so rebuilding the file never touches code that runs.
    public static func load(path: String) throws -> PluginLibrary {
        try loadNoting(path: path).library
    }

    /// `load(path:)`, saying whether the file holds another build than the one last loaded from it.
    public static func loadNoting(path: String) throws -> Loading {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw PluginLoadError(path: path, kind: .fileMissing, detail: String(cString: strerror(errno)))
        }
        let stamp = FileStamp(status)
        let key = realPath(path) ?? path
        return try loaded.withLockedValue { cache in
            var builds = cache[key] ?? []
            let latest = builds.last
            if let latest, latest.stamp == stamp {
                return Loading(library: latest.library, isNew: false, replacedBuild: nil)
            }
            let copy = PluginFileCopies.copy(path)
            let digest: String
            switch copy {
            case .success(let made): digest = made.sha256
            case .failure:
                guard let hashed = SHA256.hex(ofFileAt: path) else {
                    throw PluginLoadError(path: path, kind: .notSharedObject, detail: String(cString: strerror(errno)))
                }
                digest = hashed
            }
            let replaced = latest.flatMap { $0.library.sha256 == digest ? nil : $0.library.sha256 }
            if let index = builds.firstIndex(where: { $0.library.sha256 == digest }) {
                // The file holds a build loaded before (touched, or put back): that library serves again.
                if case .success(let made) = copy { PluginFileCopies.discard(made) }
                var build = builds.remove(at: index)
                build.stamp = stamp
                builds.append(build)
                cache[key] = builds
                return Loading(library: build.library, isNew: false, replacedBuild: replaced)
            }
            let library = try open(path: path, copy: copy, sha256: digest, rebuild: !builds.isEmpty)
            builds.append(LoadedBuild(stamp: stamp, library: library))
            cache[key] = builds
            return Loading(library: library, isNew: true, replacedBuild: replaced)
        }
    }

    /// Maps the build from its private copy; without a usable copy (no writable TMPDIR, or one mounted noexec), the
    /// first build of a file from the file itself, saying why in `inPlaceReason`.
    private static func open(
        path: String, copy: Result<PluginFileCopies.Copy, PluginFileCopies.CopyFailure>, sha256: String, rebuild: Bool
    ) throws -> PluginLibrary {
        var reason: String
        switch copy {
        case .success(let made):
            do {
                return try open(path: path, openPath: made.path, sha256: sha256, inPlaceReason: nil)
            } catch let error as PluginLoadError where error.kind == .notSharedObject {
                // The copy did not map; the file itself decides whether it is a plugin at all.
                PluginFileCopies.discard(made)
                reason = "its private copy \(made.path) does not load (\(error.detail)); is the directory noexec?"
                    + " point TMPDIR at one that allows executables"
            } catch {
                PluginFileCopies.discard(made)
                throw error
            }
        case .failure(let failure):
            reason = "no private copy: \(failure)"
        }
        if rebuild {
            throw PluginLoadError(
                path: path, kind: .notSharedObject,
                detail: "the file holds a new build, which cannot be loaded beside the running one (\(reason));"
                    + " restart the proxy to load it"
            )
        }
        return try open(path: path, openPath: nil, sha256: sha256, inPlaceReason: reason)
    }

    /// Loads a bundled plugin: `lib<name>.so` in `S2S_PROXY_PLUGIN_PATH`'s directories, then next to the running
    /// executable, then in `../lib/s2s-proxy/plugins` relative to it.
    public static func load(bundledName name: String) throws -> PluginLibrary {
        try loadNoting(bundledName: name).library
    }

    /// `load(bundledName:)`, saying whether the file holds another build than the one last loaded from it.
    public static func loadNoting(bundledName name: String) throws -> Loading {
        let directories = searchDirectories()
        let file = fileName(forBundledName: name)
        for directory in directories {
            let candidate = directory.hasSuffix("/") ? directory + file : directory + "/" + file
            if access(candidate, F_OK) == 0 {
                return try loadNoting(path: candidate)
            }
        }
        throw PluginLoadError(path: name, kind: .notFoundByName(searched: directories), detail: "")
    }

    /// `lib<name>.so`, with `-` kept (SwiftPM names dynamic products this way).
    public static func fileName(forBundledName name: String) -> String {
        #if os(macOS)
        return "lib\(name).dylib"
        #else
        return "lib\(name).so"
        #endif
    }

    static func searchDirectories() -> [String] {
        var directories: [String] = []
        if let value = getenv("S2S_PROXY_PLUGIN_PATH") {
            directories += String(cString: value).split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        if let executable = executableDirectory() {
            directories.append(executable)
            directories.append(executable + "/../lib/s2s-proxy/plugins")
        }
        return directories
    }

    private static func executableDirectory() -> String? {
        guard let resolved = realPath("/proc/self/exe") else { return nil }
        guard let slash = resolved.lastIndex(of: "/") else { return nil }
        return String(resolved[..<slash])
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// dlopen `openPath` (or `path`) and check its table; errors name `path`, the file the configuration names.
    private static func open(
        path: String, openPath: String?, sha256: String, inPlaceReason: String?
    ) throws -> PluginLibrary {
        // A path without a slash would make dlopen search the library path instead of opening this file.
        let file = openPath ?? path
        let dlopenPath = file.contains("/") ? file : "./" + file
        _ = dlerror()
        guard let handle = dlopen(dlopenPath, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            let message = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            if let (found, expected) = ELFIdentity.mismatch(ofFileAt: dlopenPath) {
                throw PluginLoadError(path: path, kind: .wrongArchitecture(found: found, expected: expected), detail: message)
            }
            // A Swift plugin built with another release may need runtime symbols this process's runtime lacks.
            let hint = message.contains("undefined symbol: $s") || message.contains("undefined symbol: swift_")
                ? " (a Swift runtime symbol: was the plugin built with another Swift release than this s2s-proxy's"
                    + " \(SwiftRelease.current)? `s2s-proxy --version` names it)"
                : ""
            throw PluginLoadError(path: path, kind: .notSharedObject, detail: message + hint)
        }
        guard let symbol = dlsym(handle, S2S_PLUGIN_ENTRY_SYMBOL) else {
            throw PluginLoadError(path: path, kind: .entrySymbolMissing, detail: "")
        }
        let entry = unsafeBitCast(symbol, to: s2s_plugin_entry_fn.self)
        guard let api = entry(UInt32(S2S_PLUGIN_ABI_MAJOR), UInt32(S2S_PLUGIN_ABI_MINOR)) else {
            throw PluginLoadError(path: path, kind: .entryRefused, detail: "")
        }
        return try PluginLibrary(
            path: path, api: api, sha256: sha256, mappedPath: openPath ?? path, inPlaceReason: inPlaceReason
        )
    }
}

/// The machine and word size an ELF file is built for, read from its header (the first 20 bytes), to say why a
/// plugin for another architecture does not load: glibc's dlopen reports such a file as "No such file or directory".
enum ELFIdentity {
    /// (what the file is built for, what this process is), when the file is ELF for another machine or word size;
    /// nil when it is not ELF, cannot be read, or matches.
    static func mismatch(ofFileAt path: String) -> (found: String, expected: String)? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var header = [UInt8](repeating: 0, count: 20)
        guard fread(&header, 1, header.count, file) == header.count else { return nil }
        return mismatch(header: header)
    }

    static func mismatch(header: [UInt8]) -> (found: String, expected: String)? {
        guard header.count >= 20, header[0...3].elementsEqual([0x7F, 0x45, 0x4C, 0x46]) else { return nil }
        let bits = header[4] == 2 ? 64 : header[4] == 1 ? 32 : 0
        let littleEndian = header[5] != 2
        let machine = littleEndian
            ? UInt16(header[18]) | UInt16(header[19]) << 8 : UInt16(header[18]) << 8 | UInt16(header[19])
        let ours = (machine: current, bits: MemoryLayout<Int>.size * 8)
        guard machine != ours.machine || bits != ours.bits else { return nil }
        return ("\(name(of: machine)) (\(bits)-bit ELF)", "\(name(of: ours.machine)) (\(ours.bits)-bit ELF)")
    }

    /// This process's ELF machine number (`e_machine`).
    static var current: UInt16 {
        #if arch(x86_64)
        return 62
        #elseif arch(arm64)
        return 183
        #elseif arch(i386)
        return 3
        #elseif arch(arm)
        return 40
        #else
        return 0
        #endif
    }

    static func name(of machine: UInt16) -> String {
        switch machine {
        case 3: return "x86 (i386)"
        case 40: return "ARM (32-bit)"
        case 62: return "x86_64"
        case 183: return "aarch64"
        case 243: return "RISC-V"
        case 21: return "PowerPC 64"
        case 22: return "s390x"
        default: return "ELF machine \(machine)"
        }
    }
}
