import Glibc

/// Raises this process's soft limit on open descriptors to its hard limit and returns the new
/// soft limit. Servers call it once at start: container runtimes commonly hand out a soft limit
/// of 1,024 under a far higher hard one (containerd 2), which would cap a proxy near 500
/// proxied connections. Only servers do this; `supervise` leaves its app the limit it was given.
@discardableResult
public func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    guard getrlimit(openFilesResource, &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(openFilesResource, &raised) == 0 { limit = raised }
    }
    return Int(clamping: limit.rlim_cur)
}

/// Glibc imports RLIMIT_NOFILE as an enum case of `__rlimit_resource`.
private let openFilesResource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
