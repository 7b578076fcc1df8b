// The bundled `acl` plugin, driven through its exported C table as the host drives it (config, schema, calls),
// over real Temporal messages from Tests/Fixtures/walker and small ones encoded here. The Go proxy's own ACL cases
// (behaviour reference 8.4 #26 and #29, over the namespace object cases of 4.5) are covered, with the two
// deliberate differences: unknown services are denied, an empty namespace is "no namespace".

import ACLPlugin
import PluginABI
import PluginKit
import XCTest

final class ACLPluginTests: XCTestCase {
    private let admin = ACLPolicy.adminService
    private let workflow = ACLPolicy.workflowService
    private var hosts: [FakeHost] = []
    private let onlyOrders = #"{"allowedNamespaces": ["orders"]}"#
    private let onlyWalkerNamespace = #"{"allowedNamespaces": ["walker-ns"]}"#

    // MARK: Driving the plugin

    private func configured(_ options: String) throws -> (PluginDriver, UnsafeMutableRawPointer) {
        let table = try XCTUnwrap(PluginExport.table(for: ACLPlugin.self, hostMajor: 1, hostMinor: 0))
        let driver = PluginDriver(table: table)
        let host = FakeHost()
        hosts.append(host)
        let config = try driver.configNew(options, host: host).get()
        var error = [CChar](repeating: 0, count: 512)
        let schema = try TemporalFixtures.schemaBytes()
        let ready = schema.withUnsafeBufferPointer {
            driver.table.pointee.schema_ready!(config, s2s_bytes_t(data: $0.baseAddress, len: $0.count), &error, 512)
        }
        XCTAssertEqual(ready, S2S_OK, String(cString: error))
        return (driver, config)
    }

    /// Starts a call of `method`, sends `request` if the call proceeds, and returns the call's outcome and status.
    private func send(
        _ method: String,
        _ request: [UInt8]? = nil,
        options: String
    ) throws -> (outcome: s2s_outcome_t, status: FakeCall.Status?) {
        let (driver, config) = try configured(options)
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        let started = driver.callStart(config, call: call, method: method)
        guard started == S2S_OK else {
            return (started, call.status)
        }
        defer { driver.callEnd(config, call: call, grpcStatus: 0) }
        guard let request else {
            return (started, call.status)
        }
        let outcome = driver.onMessage(config, call: call, direction: S2S_DIRECTION_REQUEST, payload: request)
        XCTAssertNil(call.replacement, "the ACL never rewrites a request")
        return (outcome, call.status)
    }

    private func denied(_ message: String) -> FakeCall.Status {
        FakeCall.Status(code: 7, message: message)
    }

    private func fieldNumber(_ field: String, of message: String) throws -> Int {
        let schema = try TemporalFixtures.schema.get()
        return try XCTUnwrap(schema.message(named: message)?.field(named: field)?.number, "\(message).\(field)")
    }

    /// `DescribeMutableStateRequest{namespace: name}` (AdminService), with the field present even when empty.
    private func describeMutableState(namespace: String) throws -> [UInt8] {
        let number = try fieldNumber(
            "namespace",
            of: "temporal.server.api.adminservice.v1.DescribeMutableStateRequest"
        )
        return stringField(number, namespace)
    }

    // MARK: Options

    func testOptionsMirrorTheGoAclPolicyBlockAndRefuseMistakes() throws {
        let table = try XCTUnwrap(PluginExport.table(for: ACLPlugin.self, hostMajor: 1, hostMinor: 0))
        let driver = PluginDriver(table: table)
        XCTAssertEqual(driver.name, "acl")
        let good = #"{"allowedMethods": {"adminService": ["DescribeCluster"]}, "allowedNamespaces": ["orders"]}"#
        let config = try driver.configNew(good, host: FakeHost()).get()
        driver.configDestroy(config)
        driver.configDestroy(try driver.configNew("{}", host: FakeHost()).get())

        let path = #"{"allowedMethods": {"adminService": ["\#(admin)GetShard"]}}"#
        let pathError = try XCTUnwrap(driver.configNew(path, host: FakeHost()).failure)
        XCTAssertTrue(pathError.message.contains("bare AdminService method name"), pathError.message)
        let otherService = #"{"allowedMethods": {"workflowService": ["StartWorkflowExecution"]}}"#
        let serviceError = try XCTUnwrap(driver.configNew(otherService, host: FakeHost()).failure)
        XCTAssertTrue(serviceError.message.contains("'workflowService'"), serviceError.message)
        let empty = #"{"allowedNamespaces": [""]}"#
        XCTAssertNotNil(driver.configNew(empty, host: FakeHost()).failure)
    }

    func testWantsOnlyWhatThePolicyChecks() throws {
        let (driver, config) = try configured(onlyOrders)
        defer { driver.configDestroy(config) }
        XCTAssertEqual(
            driver.wants(config, method: workflow + "StartWorkflowExecution", side: S2S_SIDE_INBOUND),
            S2S_WANTS_CALL | S2S_WANTS_REQUEST_MESSAGES
        )
        XCTAssertEqual(
            driver.wants(config, method: workflow + "ListNamespaces", side: S2S_SIDE_INBOUND),
            S2S_WANTS_CALL | S2S_WANTS_REQUEST_MESSAGES | S2S_WANTS_RESPONSE_MESSAGES
        )
        let (open, openConfig) = try configured("{}")
        defer { open.configDestroy(openConfig) }
        XCTAssertEqual(open.wants(openConfig, method: admin + "GetShard", side: S2S_SIDE_INBOUND), 0)
        XCTAssertEqual(open.wants(openConfig, method: "/a.New/Service", side: S2S_SIDE_INBOUND), 0)
        XCTAssertEqual(
            open.wants(openConfig, method: workflow + "RegisterNamespace", side: S2S_SIDE_INBOUND),
            S2S_WANTS_CALL
        )
    }

    // MARK: Methods

    func testAdminMethodAllowListAllowsListedAndDeniesOthersWithTheGoMessage() throws {
        let options = #"{"allowedMethods": {"adminService": ["DescribeCluster", "StreamWorkflowReplicationMessages"]}}"#
        XCTAssertEqual(try send(admin + "DescribeCluster", options: options).outcome, S2S_OK)
        XCTAssertEqual(try send(admin + "StreamWorkflowReplicationMessages", options: options).outcome, S2S_OK)
        let getShard = try send(admin + "GetShard", options: options)
        XCTAssertEqual(getShard.outcome, S2S_REJECTED)
        XCTAssertEqual(getShard.status, denied("Calling method GetShard is not allowed."))
        XCTAssertEqual(try send(workflow + "StartWorkflowExecution", options: options).outcome, S2S_OK)
    }

    func testEmptyAllowListsAllowEveryMethod() throws {
        XCTAssertEqual(try send(admin + "GetShard", options: "{}").outcome, S2S_OK)
        XCTAssertEqual(
            try send(admin + "GetShard", options: #"{"allowedMethods": {"adminService": []}}"#).outcome,
            S2S_OK
        )
        let operatorMethod = "/temporal.api.operatorservice.v1.OperatorService/ListSearchAttributes"
        XCTAssertEqual(try send(operatorMethod, options: "{}").outcome, S2S_OK)
    }

    func testRegisterAndDeprecateNamespaceAreAlwaysDenied() throws {
        for options in ["{}", onlyOrders] {
            for method in ["RegisterNamespace", "DeprecateNamespace"] {
                let result = try send(workflow + method, options: options)
                XCTAssertEqual(result.outcome, S2S_REJECTED)
                XCTAssertEqual(result.status, denied("Calling method \(method) is not allowed."))
            }
        }
    }

    func testMethodsOfUnknownServicesAreDeniedOnceAListIsSet() throws {
        let operatorMethod = "/temporal.api.operatorservice.v1.OperatorService/DeleteNamespace"
        for options in [#"{"allowedMethods": {"adminService": ["DescribeCluster"]}}"#, onlyOrders] {
            let result = try send(operatorMethod, options: options)
            XCTAssertEqual(result.outcome, S2S_REJECTED, options)
            XCTAssertEqual(result.status, denied("Calling method DeleteNamespace is not allowed."))
            let newer = "/temporal.api.workflowservice.v2.WorkflowService/Start"
            XCTAssertEqual(try send(newer, options: options).outcome, S2S_REJECTED)
        }
    }

    // MARK: Namespaces in requests

    func testNamespaceAllowListAllowsListedNamesAndDeniesOthersWithTheGoMessage() throws {
        let method = admin + "DescribeMutableState"
        let allowed = try send(method, try describeMutableState(namespace: "orders"), options: onlyOrders)
        XCTAssertEqual(allowed.outcome, S2S_OK)
        let other = try send(method, try describeMutableState(namespace: "billing"), options: onlyOrders)
        XCTAssertEqual(other.outcome, S2S_REJECTED)
        XCTAssertEqual(
            other.status,
            denied("Calling method DescribeMutableState is not allowed by namespace access control.")
        )
        let both = #"{"allowedMethods": {"adminService": ["DescribeMutableState"]}, "allowedNamespaces": ["local"]}"#
        XCTAssertEqual(try send(method, try describeMutableState(namespace: "local"), options: both).outcome, S2S_OK)
    }

    func testEmptyNamespaceFieldMeansNoNamespace() throws {
        let request = try describeMutableState(namespace: "")
        XCTAssertFalse(request.isEmpty, "the field is on the wire, empty")
        let result = try send(admin + "DescribeMutableState", request, options: onlyOrders)
        XCTAssertEqual(result.outcome, S2S_OK)
    }

    func testRealRequestsAreCheckedAtEveryDepth() throws {
        let start = try TemporalFixtures.message("StartWorkflowExecutionRequest")
        let completed = try TemporalFixtures.message("RespondWorkflowTaskCompletedRequest")
        for (method, request) in [("StartWorkflowExecution", start), ("RespondWorkflowTaskCompleted", completed)] {
            XCTAssertEqual(try send(workflow + method, request, options: onlyWalkerNamespace).outcome, S2S_OK)
            let other = try send(workflow + method, request, options: onlyOrders)
            XCTAssertEqual(other.outcome, S2S_REJECTED, method)
            let message = "Calling method \(method) is not allowed by namespace access control."
            XCTAssertEqual(other.status?.message, message)
            XCTAssertEqual(try send(workflow + method, request, options: "{}").outcome, S2S_OK)
        }
    }

    func testANameDeepInsideARequestIsFound() throws {
        // RespondWorkflowTaskCompleted whose top-level namespace is allowed but whose commands (signal-external,
        // start-child: the Go proxy's case) name another namespace.
        let completed = try TemporalFixtures.message("RespondWorkflowTaskCompletedRequest")
        let schema = try TemporalFixtures.schema.get()
        let plan = try schema.walker(rules: ACLPolicy.namespaceRules())
            .plan(message: "temporal.api.workflowservice.v1.RespondWorkflowTaskCompletedRequest")
        let mixed = try plan.rewrite(completed) { $0.pathDescription == "namespace" ? nil : "billing" }
        XCTAssertNotEqual(mixed, completed, "the fixture carries namespaces in its commands")

        let method = workflow + "RespondWorkflowTaskCompleted"
        let result = try send(method, mixed, options: onlyWalkerNamespace)
        XCTAssertEqual(result.outcome, S2S_REJECTED)
        XCTAssertEqual(
            result.status,
            denied("Calling method RespondWorkflowTaskCompleted is not allowed by namespace access control.")
        )
        let both = #"{"allowedNamespaces": ["walker-ns", "billing"]}"#
        XCTAssertEqual(try send(method, mixed, options: both).outcome, S2S_OK)
        let refused = try mixed.withUnsafeBytes {
            let policy = ACLPolicy(allowedAdminMethods: [], allowedNamespaces: ["walker-ns"])
            return try policy.refusedNamespace(in: $0, plan: plan)
        }
        XCTAssertTrue(refused?.hasPrefix("commands") ?? false, String(describing: refused))
    }

    func testGoNamespaceObjectCasesAllowDenyAndStayUnmodified() throws {
        // The object cases of the Go proxy's namespace translation (reference 4.5) run through the ACL check:
        // no list allows, the fixture's own name allows, another name denies, and the bytes are not touched.
        let schema = try TemporalFixtures.schema.get()
        let walker = try schema.walker(rules: ACLPolicy.namespaceRules())
        let cases = [
            "RespondWorkflowTaskCompletedRequest", "GetWorkflowExecutionHistoryResponse",
            "GetWorkflowExecutionRawHistoryV2Response", "DescribeNamespaceResponse",
            "StreamWorkflowReplicationMessagesResponse", "GetNamespaceReplicationMessagesResponse",
            "PollActivityTaskQueueResponse", "StartWorkflowExecutionRequest",
        ]
        let open = ACLPolicy(allowedAdminMethods: [], allowedNamespaces: [])
        let allowing = ACLPolicy(allowedAdminMethods: [], allowedNamespaces: ["walker-ns"])
        let refusing = ACLPolicy(allowedAdminMethods: [], allowedNamespaces: ["other"])
        for name in cases {
            let bytes = try TemporalFixtures.message(name)
            let original = bytes
            let plan = try walker.plan(message: try XCTUnwrap(TemporalFixtures.messageTypes[name]))
            XCTAssertTrue(plan.canMatch, name)
            try bytes.withUnsafeBytes { payload in
                XCTAssertNil(try open.refusedNamespace(in: payload, plan: plan), name)
                XCTAssertNil(try allowing.refusedNamespace(in: payload, plan: plan), name)
                XCTAssertNotNil(try refusing.refusedNamespace(in: payload, plan: plan), name)
            }
            XCTAssertEqual(bytes, original, name)
        }
    }

    func testMalformedRequestIsDeniedNotPassed() throws {
        let truncated = Array(try TemporalFixtures.message("StartWorkflowExecutionRequest").dropLast(7))
        let result = try send(workflow + "StartWorkflowExecution", truncated, options: onlyWalkerNamespace)
        XCTAssertEqual(result.outcome, S2S_REJECTED)
        XCTAssertEqual(result.status?.code, 7)
    }

    func testMethodTheSchemaLacksIsDeniedWhenNamespacesAreRestricted() throws {
        let result = try send(workflow + "StartSomethingNew", options: onlyWalkerNamespace)
        XCTAssertEqual(result.outcome, S2S_REJECTED)
        XCTAssertEqual(
            result.status,
            denied("Calling method StartSomethingNew is not allowed by namespace access control.")
        )
    }

    // MARK: ListNamespaces

    /// A `ListNamespacesResponse` with one entry per name and a page token, encoded by field numbers from the
    /// schema; `nil` names an entry without `namespace_info`.
    private func listNamespacesResponse(_ names: [String?], pageToken: [UInt8] = [1, 2, 3]) throws -> [UInt8] {
        let namespaces = try fieldNumber("namespaces", of: "temporal.api.workflowservice.v1.ListNamespacesResponse")
        let token = try fieldNumber("next_page_token", of: "temporal.api.workflowservice.v1.ListNamespacesResponse")
        let info = try fieldNumber("namespace_info", of: "temporal.api.workflowservice.v1.DescribeNamespaceResponse")
        let failover = try fieldNumber(
            "failover_version",
            of: "temporal.api.workflowservice.v1.DescribeNamespaceResponse"
        )
        let name = try fieldNumber("name", of: "temporal.api.namespace.v1.NamespaceInfo")
        let description = try fieldNumber("description", of: "temporal.api.namespace.v1.NamespaceInfo")
        var bytes: [UInt8] = []
        for (index, entryName) in names.enumerated() {
            var entry: [UInt8] = []
            if let entryName {
                entry += lengthDelimited(info, stringField(name, entryName) + stringField(description, "d\(index)"))
            }
            entry += varintField(failover, UInt64(index + 1))
            bytes += lengthDelimited(namespaces, entry)
        }
        return bytes + lengthDelimited(token, pageToken)
    }

    private func filterListNamespaces(_ response: [UInt8], options: String) throws -> (s2s_outcome_t, [UInt8]?) {
        let (driver, config) = try configured(options)
        defer { driver.configDestroy(config) }
        let call = FakeCall()
        XCTAssertEqual(driver.callStart(config, call: call, method: workflow + "ListNamespaces"), S2S_OK)
        defer { driver.callEnd(config, call: call, grpcStatus: 0) }
        XCTAssertEqual(driver.onMessage(config, call: call, direction: S2S_DIRECTION_REQUEST, payload: []), S2S_OK)
        let outcome = driver.onMessage(config, call: call, direction: S2S_DIRECTION_RESPONSE, payload: response)
        return (outcome, call.replacement)
    }

    func testListNamespacesDropsNamespacesOutsideTheAllowList() throws {
        // The Go proxy's case: allow-list ["Bob Ross's Paint Shop"] drops "Steve's Auto Repair".
        let response = try listNamespacesResponse(["Bob Ross's Paint Shop", "Steve's Auto Repair"])
        let (outcome, replacement) = try filterListNamespaces(
            response,
            options: #"{"allowedNamespaces": ["Bob Ross's Paint Shop"]}"#
        )
        XCTAssertEqual(outcome, S2S_REPLACED)
        XCTAssertEqual(replacement, try listNamespacesResponse(["Bob Ross's Paint Shop"]))
    }

    func testListNamespacesKeepsOtherBytesAndOrder() throws {
        let response = try listNamespacesResponse(["a", "x", "b", nil, "y", "c"], pageToken: [9, 9])
        let abc = #"{"allowedNamespaces": ["a", "b", "c"]}"#
        let (outcome, replacement) = try filterListNamespaces(response, options: abc)
        XCTAssertEqual(outcome, S2S_REPLACED)
        // The expected bytes keep each kept entry as it was encoded, including its position-derived fields.
        let namespaces = try fieldNumber("namespaces", of: "temporal.api.workflowservice.v1.ListNamespacesResponse")
        var scanner = ProtoWireScanner(bytes: response)
        var expected: [UInt8] = []
        var index = 0
        while let field = try scanner.next() {
            if field.fieldNumber == namespaces {
                defer { index += 1 }
                if ![0, 2, 5].contains(index) { continue }
            }
            expected += response[field.fieldRange]
        }
        XCTAssertEqual(replacement, expected)
    }

    func testListNamespacesWithEverythingAllowedIsForwardedAsItCame() throws {
        let response = try listNamespacesResponse(["a", "b"])
        let (outcome, replacement) = try filterListNamespaces(response, options: #"{"allowedNamespaces": ["a", "b"]}"#)
        XCTAssertEqual(outcome, S2S_OK)
        XCTAssertNil(replacement)
        let (driver, config) = try configured("{}")
        defer { driver.configDestroy(config) }
        XCTAssertEqual(driver.wants(config, method: workflow + "ListNamespaces", side: S2S_SIDE_INBOUND), 0)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
