/// The outcome for one workload. Raw values are stable: the CLI prints them, logs carry them,
/// and the webhook's metrics use them as label values.
public enum InjectionReason: String, Sendable, CaseIterable {
    case injected
    case alreadyInjected = "already_injected"
    case optedOutAnnotation = "opted_out_annotation"
    case optedOutLabel = "opted_out_label"
    case hostNetwork = "host_network"
    case foreignSidecar = "foreign_sidecar"
    case namespaceExcluded = "namespace_excluded"
    case injectionDisabled = "injection_disabled"
    case notAWorkload = "not_a_workload"
    case uninjected
    case notInjected = "not_injected"
}
