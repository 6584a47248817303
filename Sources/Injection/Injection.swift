import Document
public enum Injection {}
