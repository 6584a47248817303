{{/*
The webhook's own settings: these defaults, overridden by .Values.webhook. Kept out of
values.yaml so that file stays a valid `tandem inject --config`.
*/}}
{{- define "tandem.webhookDefaults" -}}
image: ghcr.io/tandem-mesh/tandem:0.1.0
imagePullPolicy: IfNotPresent
replicas: 2
logLevel: info
failurePolicy: Fail
timeoutSeconds: 5
resources:
  requests:
    cpu: 50m
    memory: 64Mi
  limits:
    cpu: "1"
    memory: 256Mi
certManager:
  enabled: false
  issuer: ""
{{- end -}}
