/// The bridge's page: every service with its endpoints, where each came from, its health and
/// age. It reloads itself every two seconds, so it follows scale events as they happen.
public enum BridgePage {
    public static func render(_ registry: Registry, now: Double) -> String {
        var rows = ""
        for service in registry.services {
            let endpoints = registry.endpoints(of: service)
            for (index, endpoint) in endpoints.enumerated() {
                let origin: String
                let age: String
                switch endpoint.origin {
                case .kubernetes(let slice, let target):
                    origin = "kubernetes · " + escape(target ?? slice)
                    age = "—"
                case .legacy(let revision, _, _, let lastCheckIn):
                    origin = "legacy · revision " + escape(revision)
                    age = "\(Int(max(0, now - lastCheckIn)))s since heartbeat"
                }
                let name = index == 0 ? "<th rowspan=\"\(endpoints.count)\">\(escape(service))</th>" : ""
                rows += "<tr>\(name)<td>\(escape(endpoint.address)):\(endpoint.port)</td><td>\(origin)</td>"
                    + "<td class=\"\(endpoint.health.rawValue.lowercased())\">\(endpoint.health.rawValue)</td><td>\(age)</td></tr>\n"
            }
        }
        if rows.isEmpty { rows = "<tr><td colspan=\"5\">No services yet.</td></tr>\n" }
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
        <title>Tandem bridge</title>
        <style>
        body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
        table{border-collapse:collapse;min-width:40rem}th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;vertical-align:top}
        .healthy{color:#176c2f}.draining{color:#a36500}.unhealthy{color:#b3261e}
        </style></head><body>
        <h1>Tandem bridge</h1>
        <p>\(registry.services.count == 1 ? "1 service" : "\(registry.services.count) services") · registry version \(registry.version)</p>
        <table><thead><tr><th>service</th><th>endpoint</th><th>origin</th><th>health</th><th>age</th></tr></thead>
        <tbody>
        \(rows)</tbody></table>
        </body></html>

        """
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
