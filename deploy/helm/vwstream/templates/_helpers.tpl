{{/* The release's name, the prefix of everything it creates. */}}
{{- define "vwstream.fullname" -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* The pod's identity; selectorLabels pick this release's pod. */}}
{{- define "vwstream.selectorLabels" -}}
app.kubernetes.io/name: vaultwarden
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vwstream.labels" -}}
{{ include "vwstream.selectorLabels" . }}
app.kubernetes.io/part-of: {{ .Values.vaultName }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* vwstream's secrets given as values, by variable name (empty ones left out). */}}
{{- define "vwstream.secretValues" -}}
{{- $v := dict
  "S3_ACCESS_KEY_ID" .Values.s3.accessKeyId
  "S3_SECRET_ACCESS_KEY" .Values.s3.secretAccessKey
  "ENCRYPTION_PASSPHRASE" .Values.encryption.passphrase
  "ENCRYPTION_KEY" .Values.encryption.key
  "GPG_PASSPHRASE" .Values.snapshots.gpgPassphrase
  "AGE_PASSPHRASE" .Values.snapshots.agePassphrase
  "NOTIFICATION_URLS" .Values.notifications.urls -}}
{{- $out := dict -}}
{{- range $k, $val := $v -}}
{{- if $val -}}{{- $_ := set $out $k (toString $val) -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The variable names the mounted Secret holds, as a JSON list. */}}
{{- define "vwstream.secretKeys" -}}
{{- if .Values.existingSecret -}}
{{- toJson .Values.existingSecretKeys -}}
{{- else -}}
{{- toJson (keys (include "vwstream.secretValues" . | fromJson) | sortAlpha) -}}
{{- end -}}
{{- end -}}

{{- define "vwstream.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "vwstream.fullname" .)) -}}
{{- end -}}

{{/* The shutdown budget (Vaultwarden's stop 10 s + file sync + replication +
lease release 5 s) and a margin: the kubelet must not kill vwstream before it
has flushed. */}}
{{- define "vwstream.gracePeriod" -}}
{{- add 10 (int .Values.sync.shutdownTimeoutSeconds) (int .Values.replication.shutdownTimeoutSeconds) 5 15 -}}
{{- end -}}
