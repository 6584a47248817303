public enum Kubernetes {}
