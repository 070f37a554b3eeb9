{{- define "modelaas.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelaas.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelaas.labels" -}}
{{ include "modelaas.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "modelaas.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* More than one pod may run at once. */}}
{{- define "modelaas.multiPod" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}true{{- end -}}
{{- end -}}

{{/* Refuse values that would make a broken deployment. */}}
{{- define "modelaas.check" -}}
{{- if and (include "modelaas.multiPod" .) (not .Values.postgresql.existingSecret) -}}
{{- fail "More than one modelaas pod needs a shared job store: set postgresql.existingSecret (a Secret with the PostgreSQL URL); SQLite in a pod's /data cannot be shared." -}}
{{- end -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (add .Values.preStopSeconds .Values.drainSeconds | int) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than preStopSeconds + drainSeconds (%d), or pods are killed while they drain." (int .Values.terminationGracePeriodSeconds) (add .Values.preStopSeconds .Values.drainSeconds | int)) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.podsMetric.name) -}}
{{- fail "autoscaling needs targetCPUUtilizationPercentage or podsMetric.name." -}}
{{- end -}}
{{- range $key, $_ := .Values.settings -}}
{{- if has $key (list "listen_ip" "listen_port" "data_dir" "jobs_db" "tokens") -}}
{{- fail (printf "settings.%s is set by the chart; see values.yaml." $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
