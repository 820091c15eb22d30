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

{{/* The pod template both workload kinds use. */}}
{{- define "modelarts-exporter.podTemplate" -}}
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
        {{- range $env, $value := dict "MODELARTS_EXPORTER_CLOUD" .Values.config.cloud "MODELARTS_EXPORTER_REGION" .Values.config.region "MODELARTS_EXPORTER_ENDPOINT" .Values.config.endpoint "MODELARTS_EXPORTER_IAM_ENDPOINT" .Values.config.iamEndpoint "MODELARTS_EXPORTER_PROJECT_ID" .Values.config.projectId "MODELARTS_EXPORTER_PROJECT_NAME" .Values.config.projectName }}
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
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml .Values.readinessProbe | nindent 8 }}
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
