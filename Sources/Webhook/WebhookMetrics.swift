import Injection
import Telemetry

/// Every metric the webhook exports, declared in one place.
public struct WebhookMetrics: Sendable {
    public let registry: MetricsRegistry
    /// Admission requests by outcome (`patched`, `allowed`, `denied`, `bad_request`) and reason code.
    public let admissions: Counter
    public let latency: Histogram
    /// Config file reloads by result (`success`, `failure`).
    public let configReloads: Counter
    /// 1 when the last attempt to load the config succeeded.
    public let configValid: Gauge
    /// 1 unless the kill switch (`injection.enabled: false`) is on.
    public let injectionEnabled: Gauge
    /// Serving certificate reloads seen by the TLS context.
    public let certificateReloads: Gauge

    /// `build` labels the build-info gauge: version, source revision and library versions, the
    /// same values `tandem version` prints and the image's labels carry.
    public init(registry: MetricsRegistry = MetricsRegistry(), build: [(name: String, value: String)]) {
        self.registry = registry
        registry.buildInfo(build)
        admissions = registry.counter("tandem_webhook_admissions_total",
                                      help: "Admission requests by outcome and reason code.", labels: ["outcome", "reason"])
        latency = registry.histogram("tandem_webhook_admission_duration_seconds",
                                     help: "Time to answer an admission request, from body received to response built.",
                                     labels: ["outcome"])
        configReloads = registry.counter("tandem_webhook_config_reloads_total",
                                         help: "Attempts to load a changed config file, by result.", labels: ["result"])
        for result in ["success", "failure"] { configReloads.increment(by: 0, result) }
        configValid = registry.gauge("tandem_webhook_config_valid", help: "1 when the last config load succeeded, else 0.")
        injectionEnabled = registry.gauge("tandem_webhook_injection_enabled",
                                          help: "1 when injection is on, 0 when injection.enabled is false.")
        certificateReloads = registry.gauge("tandem_webhook_certificate_reloads",
                                            help: "Times the serving certificate was reloaded from disk.")
    }
}
