{{/* Names, labels and the pieces the Deployment and the StatefulSet share. */}}

{{- define "modelarts-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelarts-exporter.fullname" -}}
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

{{- define "modelarts-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelarts-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelarts-exporter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "modelarts-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: exporter
{{- end }}

{{- define "modelarts-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelarts-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelarts-exporter.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the chart creates the Secret from values. */}}
{{- define "modelarts-exporter.createSecret" -}}
{{- $s := .Values.secret }}
{{- if not $s.existingSecret }}
{{- range $name, $_ := $s.keys }}{{ if index $s $name }}true{{ end }}{{ end }}
{{- if $s.extraData }}true{{ end }}
{{- end }}
{{- end }}

{{/* Name of the Secret the pod reads, empty when there is none. */}}
{{- define "modelarts-exporter.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if include "modelarts-exporter.createSecret" . }}
{{- include "modelarts-exporter.fullname" . }}
{{- end }}
{{- end }}

{{- define "modelarts-exporter.configFilePath" -}}/etc/modelarts-exporter/config/targets.yaml{{- end }}
{{- define "modelarts-exporter.secretMountPath" -}}/etc/modelarts-exporter/secrets{{- end }}
{{- define "modelarts-exporter.webConfigMountPath" -}}/etc/modelarts-exporter/web{{- end }}

{{/* Web config (TLS and basic auth of the exporter's endpoints): either a whole web-config.yml in
webConfig.existingSecret, or one the chart renders from webConfig.tls and webConfig.basicAuthUsers.
The predicates below are true when non-empty. */}}
{{- define "modelarts-exporter.webConfig.validate" -}}
{{- $w := .Values.webConfig }}
{{- if and $w.existingSecret (or $w.tls.secretName $w.tls.clientAuthType $w.tls.clientCA.secretName $w.basicAuthUsers) }}
{{- fail "webConfig.existingSecret holds a complete web-config.yml: leave webConfig.tls and webConfig.basicAuthUsers empty, or drop existingSecret and let the chart render the file from them" }}
{{- end }}
{{- if and (not $w.existingSecret) (or $w.existingSecretTls $w.existingSecretClientCertRequired) }}
{{- fail "webConfig.existingSecretTls and webConfig.existingSecretClientCertRequired describe the file in webConfig.existingSecret, which is not set" }}
{{- end }}
{{- if and $w.tls.clientAuthType (not $w.tls.secretName) }}
{{- fail "webConfig.tls.clientAuthType needs webConfig.tls.secretName: client certificates are checked in the TLS handshake" }}
{{- end }}
{{- if and $w.tls.clientCA.secretName (not $w.tls.clientAuthType) }}
{{- fail "webConfig.tls.clientCA.secretName is set but webConfig.tls.clientAuthType is empty: the exporter refuses client CAs it would not use" }}
{{- end }}
{{- end }}

{{- define "modelarts-exporter.webConfig.render" -}}
{{- $w := .Values.webConfig }}
{{- if or $w.tls.secretName $w.basicAuthUsers }}true{{ end }}
{{- end }}

{{- define "modelarts-exporter.webConfig.enabled" -}}
{{- if or .Values.webConfig.existingSecret (include "modelarts-exporter.webConfig.render" .) }}true{{ end }}
{{- end }}

{{- define "modelarts-exporter.webConfig.tls" -}}
{{- $w := .Values.webConfig }}
{{- if or $w.tls.secretName $w.existingSecretTls $w.existingSecretClientCertRequired }}true{{ end }}
{{- end }}

{{/* Kubernetes probes cannot present a client certificate. */}}
{{- define "modelarts-exporter.webConfig.clientCertRequired" -}}
{{- $w := .Values.webConfig }}
{{- if or (eq $w.tls.clientAuthType "RequireAndVerifyClientCert") $w.existingSecretClientCertRequired }}true{{ end }}
{{- end }}

{{- define "modelarts-exporter.webConfig.secretName" -}}
{{- default (printf "%s-web-config" (include "modelarts-exporter.fullname" .)) .Values.webConfig.existingSecret }}
{{- end }}

{{- define "modelarts-exporter.webConfig.file" -}}
{{- $key := "web-config.yml" }}
{{- if .Values.webConfig.existingSecret }}
{{- $key = .Values.webConfig.existingSecretKey }}
{{- end }}
{{- printf "%s/%s" (include "modelarts-exporter.webConfigMountPath" .) $key }}
{{- end }}

{{/* The web-config.yml the chart renders. Paths are relative to it: the files of the TLS Secrets
are projected next to it (see webConfig.volume). */}}
{{- define "modelarts-exporter.webConfig.content" -}}
{{- $w := .Values.webConfig }}
{{- $config := dict }}
{{- if $w.tls.secretName }}
{{- $tls := dict "cert_file" "tls.crt" "key_file" "tls.key" }}
{{- if $w.tls.clientAuthType }}
{{- $_ := set $tls "client_auth_type" $w.tls.clientAuthType }}
{{- $_ := set $tls "client_ca_file" "client-ca.crt" }}
{{- end }}
{{- $_ := set $config "tls_server_config" $tls }}
{{- end }}
{{- with $w.basicAuthUsers }}
{{- $_ := set $config "basic_auth_users" . }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* One volume holding web-config.yml and every file it names, mounted without subPath so that
Kubernetes updates the files in place when a Secret changes (cert-manager renewing the
certificate, new users). No checksum annotation rolls the pods: the exporter re-reads its web
config when the file changes. */}}
{{- define "modelarts-exporter.webConfig.volume" -}}
{{- $w := .Values.webConfig -}}
- name: web-config
  {{- if $w.existingSecret }}
  secret:
    secretName: {{ $w.existingSecret }}
    defaultMode: 0440
  {{- else }}
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "modelarts-exporter.webConfig.secretName" . }}
          items:
            - key: web-config.yml
              path: web-config.yml
      {{- with $w.tls.secretName }}
      - secret:
          name: {{ . }}
          items:
            - key: tls.crt
              path: tls.crt
            - key: tls.key
              path: tls.key
      {{- end }}
      {{- if $w.tls.clientAuthType }}
      - secret:
          name: {{ default $w.tls.secretName $w.tls.clientCA.secretName }}
          items:
            - key: {{ $w.tls.clientCA.key }}
              path: client-ca.crt
      {{- end }}
  {{- end }}
{{- end }}

{{/* A probe of the values, fitted to the web config: HTTPS under TLS, and a TCP check when every
client must show a certificate (the kubelet has none). */}}
{{- define "modelarts-exporter.probe" -}}
{{- $probe := deepCopy .probe }}
{{- if $probe.httpGet }}
{{- if include "modelarts-exporter.webConfig.clientCertRequired" .root }}
{{- $_ := set $probe "tcpSocket" (dict "port" $probe.httpGet.port) }}
{{- $_ := unset $probe "httpGet" }}
{{- else if include "modelarts-exporter.webConfig.tls" .root }}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{/* The pod template both workload kinds use. */}}
{{/* A pod that cannot poll crash-loops: refuse to render one. It needs a project, where the API
is, and a Secret with its credentials (config.targets, when set, names the projects and endpoints
itself). And replicas that are not shards would each poll every target. */}}
{{- define "modelarts-exporter.validate" -}}
{{- $c := .Values.config }}
{{- $missing := list }}
{{- if not (or $c.projectId $c.projectName $c.targets) }}
{{- $missing = append $missing "config.projectId (or config.projectName, or config.targets)" }}
{{- end }}
{{- if not (or $c.endpoint $c.cloud $c.targets) }}
{{- $missing = append $missing "config.cloud and config.region (or config.endpoint)" }}
{{- end }}
{{- if not (include "modelarts-exporter.secretName" .) }}
{{- $missing = append $missing "credentials: secret.existingSecret, or secret.accessKey and secret.secretKey (or secret.authToken, or secret.username, secret.password and secret.domainName)" }}
{{- end }}
{{- if $missing }}
{{- fail (printf "the exporter cannot poll without these values; set %s (see the chart's README)" (join "; " $missing)) }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.sharding.enabled) }}
{{- fail (printf "replicaCount %d without sharding would poll every target %d times: set sharding.enabled=true and sharding.replicas=%d instead (each replica then polls its share)" (int .Values.replicaCount) (int .Values.replicaCount) (int .Values.replicaCount)) }}
{{- end }}
{{- end }}

{{- define "modelarts-exporter.podTemplate" -}}
{{- include "modelarts-exporter.validate" . }}
{{- include "modelarts-exporter.webConfig.validate" . }}
{{- $secretName := include "modelarts-exporter.secretName" . -}}
metadata:
  labels:
    {{- include "modelarts-exporter.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- /* A changed targets file rolls the pods: the exporter re-reads it only on SIGHUP, which
    nothing sends when a ConfigMap changes. */}}
    checksum/config: {{ toYaml .Values.config | sha256sum }}
    {{- if include "modelarts-exporter.createSecret" . }}
    checksum/secret: {{ toYaml .Values.secret | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "modelarts-exporter.serviceAccountName" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: exporter
      image: {{ include "modelarts-exporter.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve"]
      ports:
        - name: http-metrics
          containerPort: 9878
          protocol: TCP
      env:
        - name: MODELARTS_EXPORTER_LISTEN_ADDRESS
          value: "0.0.0.0:9878"
        {{- range $env, $value := dict "MODELARTS_EXPORTER_CLOUD" .Values.config.cloud "MODELARTS_EXPORTER_REGION" .Values.config.region "MODELARTS_EXPORTER_ENDPOINT" .Values.config.endpoint "MODELARTS_EXPORTER_IAM_ENDPOINT" .Values.config.iamEndpoint "MODELARTS_EXPORTER_PROJECT_ID" .Values.config.projectId "MODELARTS_EXPORTER_PROJECT_NAME" .Values.config.projectName "MODELARTS_EXPORTER_API_VERSION" .Values.config.apiVersion }}
        {{- if $value }}
        - name: {{ $env }}
          value: {{ $value | quote }}
        {{- end }}
        {{- end }}
        {{- if not (kindIs "invalid" .Values.config.pollIntervalSeconds) }}
        - name: MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS
          value: {{ .Values.config.pollIntervalSeconds | quote }}
        {{- end }}
        {{- with .Values.config.logFormat }}
        - name: MODELARTS_EXPORTER_LOG_FORMAT
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.config.logLevel }}
        - name: MODELARTS_EXPORTER_LOG_LEVEL
          value: {{ . | quote }}
        {{- end }}
        {{- if .Values.config.targets }}
        - name: MODELARTS_EXPORTER_CONFIG_FILE
          value: {{ include "modelarts-exporter.configFilePath" . }}
        {{- end }}
        {{- if include "modelarts-exporter.webConfig.enabled" . }}
        - name: MODELARTS_EXPORTER_WEB_CONFIG_FILE
          value: {{ include "modelarts-exporter.webConfig.file" . }}
        {{- end }}
        {{- if .Values.sharding.enabled }}
        - name: MODELARTS_EXPORTER_SHARD
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
        - name: MODELARTS_EXPORTER_TOTAL_SHARDS
          value: {{ .Values.sharding.replicas | quote }}
        {{- end }}
        {{- if $secretName }}
        {{- /* Optional references: a key the Secret lacks leaves its variable unset. (A *_FILE
        variable naming a missing file would instead stop the exporter, and with existingSecret
        the chart cannot know which keys exist.) */}}
        {{- $keys := .Values.secret.keys }}
        {{- range $env, $key := dict "MODELARTS_EXPORTER_AUTH_TOKEN" $keys.authToken "MODELARTS_EXPORTER_ACCESS_KEY" $keys.accessKey "MODELARTS_EXPORTER_SECRET_KEY" $keys.secretKey "MODELARTS_EXPORTER_SECURITY_TOKEN" $keys.securityToken "MODELARTS_EXPORTER_USERNAME" $keys.username "MODELARTS_EXPORTER_PASSWORD" $keys.password "MODELARTS_EXPORTER_DOMAIN_NAME" $keys.domainName }}
        - name: {{ $env }}
          valueFrom:
            secretKeyRef:
              name: {{ $secretName }}
              key: {{ $key }}
              optional: true
        {{- end }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      livenessProbe:
        {{- include "modelarts-exporter.probe" (dict "probe" .Values.livenessProbe "root" .) | nindent 8 }}
      readinessProbe:
        {{- include "modelarts-exporter.probe" (dict "probe" .Values.readinessProbe "root" .) | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if .Values.config.targets }}
        - name: config
          mountPath: {{ include "modelarts-exporter.configFilePath" . | dir }}
          readOnly: true
        {{- end }}
        {{- if $secretName }}
        - name: secrets
          mountPath: {{ include "modelarts-exporter.secretMountPath" . }}
          readOnly: true
        {{- end }}
        {{- if include "modelarts-exporter.webConfig.enabled" . }}
        - name: web-config
          mountPath: {{ include "modelarts-exporter.webConfigMountPath" . }}
          readOnly: true
        {{- end }}
  volumes:
    # Scratch space for anything that asks for a temporary file; the root filesystem stays read-only.
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    {{- if .Values.config.targets }}
    - name: config
      configMap:
        name: {{ include "modelarts-exporter.fullname" . }}
    {{- end }}
    {{- if $secretName }}
    - name: secrets
      secret:
        secretName: {{ $secretName }}
        defaultMode: 0440
    {{- end }}
    {{- if include "modelarts-exporter.webConfig.enabled" . }}
    {{- include "modelarts-exporter.webConfig.volume" . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
