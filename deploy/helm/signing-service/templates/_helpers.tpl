{{/* Names, labels and the pieces the Deployment and the migrations Job share. */}}

{{- define "signing-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Kubernetes names are at most 63 characters; a release named after the chart is not repeated. */}}
{{- define "signing-service.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "signing-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "signing-service.labels" -}}
helm.sh/chart: {{ include "signing-service.chart" . }}
{{ include "signing-service.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: signing-manager
{{- end }}

{{- define "signing-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signing-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The serving pods. The component keeps the migrations Job's pod out of the Service, the PDB
and the spread: it runs the same image with the same labels otherwise. */}}
{{- define "signing-service.serverSelectorLabels" -}}
{{ include "signing-service.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "signing-service.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret the pods read: the one the admin made, or the chart's own. */}}
{{- define "signing-service.secretName" -}}
{{- .Values.existingSecret | default (include "signing-service.fullname" .) }}
{{- end }}

{{/* The name of one key in that Secret: the chart's own names, or those of existingSecretKeys.
Called with a list: the root context and masterKey, databaseUrl or metricsToken. */}}
{{- define "signing-service.secretKey" -}}
{{- $root := index . 0 }}
{{- $which := index . 1 }}
{{- $ownKey := index (dict "masterKey" "master-key" "databaseUrl" "database-url" "metricsToken" "metrics-token") $which }}
{{- if $root.Values.existingSecret }}
{{- index $root.Values.existingSecretKeys $which | default $ownKey }}
{{- else }}
{{- $ownKey }}
{{- end }}
{{- end }}

{{/* Behind an Ingress the pods speak plain HTTP (signing-service run --http); else HTTPS. */}}
{{- define "signing-service.portName" -}}
{{- if .Values.ingress.enabled }}http{{ else }}https{{ end }}
{{- end }}

{{- define "signing-service.selfSignedTLS" -}}
{{- if not (or .Values.ingress.enabled .Values.tls.existingSecret) }}true{{ end }}
{{- end }}

{{/* The Service's cluster DNS names, short to fully qualified. */}}
{{- define "signing-service.serviceHostnames" -}}
{{- $name := include "signing-service.fullname" . }}
{{- $namespace := .Release.Namespace }}
{{- list $name (printf "%s.%s" $name $namespace) (printf "%s.%s.svc" $name $namespace) (printf "%s.%s.svc.%s" $name $namespace .Values.clusterDomain) | join "," }}
{{- end }}

{{/* Host headers the service accepts. The probes send "localhost"; Prometheus sends the pod's
address, which the kubelet substitutes for $(POD_IP). */}}
{{- define "signing-service.allowedHosts" -}}
{{- $hosts := list }}
{{- if .Values.ingress.enabled }}
{{- $hosts = append $hosts .Values.ingress.host }}
{{- end }}
{{- $hosts = append $hosts (include "signing-service.serviceHostnames" .) }}
{{- $hosts = concat $hosts (list "localhost" "$(POD_IP)") .Values.extraHostnames }}
{{- join "," $hosts }}
{{- end }}

{{/* Refuse values that would deploy a broken or unsafe service, each with what to do instead. */}}
{{- define "signing-service.checkValues" -}}
{{- $secrets := .Values.secrets }}
{{- if .Values.existingSecret }}
{{- if or $secrets.masterKey $secrets.databaseUrl $secrets.metricsToken }}
{{- fail "Give either existingSecret or secrets.*, not both: with existingSecret the chart reads every secret from that Secret." }}
{{- end }}
{{- else }}
{{- $masterKey := required "Set secrets.masterKey (32 random bytes, base64: openssl rand -base64 32) and secrets.databaseUrl, or name a Secret you made in existingSecret." $secrets.masterKey }}
{{- if not (regexMatch "^[A-Za-z0-9+/]{43}=$" (trim $masterKey)) }}
{{- fail "secrets.masterKey must be 32 random bytes in base64 (44 characters; make one with: openssl rand -base64 32)." }}
{{- end }}
{{- $databaseUrl := required "Set secrets.databaseUrl (postgres://USER:PASSWORD@HOST:5432/DATABASE), or name a Secret you made in existingSecret." $secrets.databaseUrl }}
{{- if hasPrefix "sqlite" $databaseUrl }}
{{- fail "secrets.databaseUrl must name a PostgreSQL database: a pod's data directory is emptied when it restarts and is not shared between pods." }}
{{- end }}
{{- if .Values.metrics.enabled }}
{{- $_ := required "metrics.enabled needs secrets.metricsToken (the bearer token Prometheus sends; e.g. openssl rand -hex 32)." $secrets.metricsToken }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: without a token the service serves no metrics." }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- $_ := required "ingress.enabled needs ingress.host, the name clients use (e.g. signing.example.com)." .Values.ingress.host }}
{{- $_ := required "ingress.enabled needs ingress.trustedProxies: the addresses or CIDRs of your ingress controller's pods (e.g. 10.244.0.0/16), whose X-Forwarded-For the service may believe." .Values.ingress.trustedProxies }}
{{- if .Values.tls.existingSecret }}
{{- fail "tls.existingSecret is for pods that serve HTTPS themselves; behind an Ingress put the certificate in ingress.tls.secretName." }}
{{- end }}
{{- end }}
{{- end }}

{{/* The environment of the service and of the migrations Job (the same settings for both).
Secrets come as files: only their paths are here. */}}
{{- define "signing-service.env" -}}
{{- $secretsDir := "/run/secrets/signing-service" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: SIGNING_SERVICE_DATA_DIR
  value: /data
- name: SIGNING_SERVICE_MASTER_KEY_FILE
  value: {{ $secretsDir }}/master-key
- name: SIGNING_SERVICE_DATABASE_URL_FILE
  value: {{ $secretsDir }}/database-url
{{- if .Values.metrics.enabled }}
- name: SIGNING_SERVICE_METRICS_TOKEN_FILE
  value: {{ $secretsDir }}/metrics-token
{{- end }}
- name: SIGNING_SERVICE_WORKERS
  value: {{ .Values.workers | quote }}
- name: SIGNING_SERVICE_ALLOWED_HOSTS
  value: {{ include "signing-service.allowedHosts" . | quote }}
{{- if .Values.ingress.enabled }}
- name: SIGNING_SERVICE_BEHIND_PROXY
  value: "true"
- name: SIGNING_SERVICE_TRUSTED_PROXIES
  value: {{ .Values.ingress.trustedProxies | quote }}
- name: SIGNING_SERVICE_PROXY_COUNT
  value: {{ .Values.ingress.proxyCount | quote }}
- name: SIGNING_SERVICE_PUBLIC_URL
  value: {{ printf "https://%s" .Values.ingress.host | quote }}
- name: SIGNING_SERVICE_CSRF_TRUSTED_ORIGINS
  value: {{ printf "https://%s" .Values.ingress.host | quote }}
{{- else }}
{{- if .Values.publicUrl }}
- name: SIGNING_SERVICE_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
{{- end }}
{{- if .Values.tls.existingSecret }}
- name: SIGNING_SERVICE_TLS_CERT_PATH
  value: /run/secrets/signing-service-tls/tls.crt
- name: SIGNING_SERVICE_TLS_KEY_PATH
  value: /run/secrets/signing-service-tls/tls.key
{{- else }}
{{- /* The names the self-signed certificate covers besides the pod's own. */}}
- name: SIGNING_SERVICE_HOSTNAMES
  value: {{ concat (list (include "signing-service.serviceHostnames" .)) .Values.extraHostnames | join "," | quote }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "signing-service.volumeMounts" -}}
- name: secrets
  mountPath: /run/secrets/signing-service
  readOnly: true
{{- if and (not .Values.ingress.enabled) .Values.tls.existingSecret }}
- name: tls
  mountPath: /run/secrets/signing-service-tls
  readOnly: true
{{- end }}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* The pod-level fields the Deployment and the Job share: identity, security, scheduling and
volumes. The root filesystem is read-only, so /data and /tmp are emptyDirs. */}}
{{- define "signing-service.podSpec" -}}
automountServiceAccountToken: false
{{- /* Service links would add SIGNING_SERVICE_PORT and the like for a Service named
signing-service: variables in the service's own namespace of settings. */}}
enableServiceLinks: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: secrets
    secret:
      secretName: {{ include "signing-service.secretName" . }}
      {{- /* Fixed file names whatever the keys are called; a missing key stops the pod. */}}
      items:
        - key: {{ include "signing-service.secretKey" (list . "masterKey") }}
          path: master-key
        - key: {{ include "signing-service.secretKey" (list . "databaseUrl") }}
          path: database-url
        {{- if .Values.metrics.enabled }}
        - key: {{ include "signing-service.secretKey" (list . "metricsToken") }}
          path: metrics-token
        {{- end }}
      {{- /* Readable by the service's group (fsGroup) alone. */}}
      defaultMode: 0440
  {{- if and (not .Values.ingress.enabled) .Values.tls.existingSecret }}
  - name: tls
    secret:
      secretName: {{ .Values.tls.existingSecret }}
      items:
        - key: tls.crt
          path: tls.crt
        - key: tls.key
          path: tls.key
      defaultMode: 0440
  {{- end }}
  - name: data
    emptyDir:
      sizeLimit: {{ .Values.storage.dataSizeLimit }}
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.storage.tmpSizeLimit }}
{{- end }}

{{/* The container fields the Deployment and the Job share. */}}
{{- define "signing-service.container" -}}
image: {{ include "signing-service.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
env:
  {{- include "signing-service.env" . | nindent 2 }}
volumeMounts:
  {{- include "signing-service.volumeMounts" . | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
{{- end }}
