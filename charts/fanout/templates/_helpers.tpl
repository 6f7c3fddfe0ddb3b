{{/*
Names. Every object is "<fullname>-<component>" (fanout-gateway-eu, fanout-router, ...).
*/}}
{{- define "fanout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fanout.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels; call with (dict "root" $ "component" "router"). */}}
{{- define "fanout.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: fanout
{{ include "fanout.selectorLabels" . }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels; a gateway pool adds its region. */}}
{{- define "fanout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fanout.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .region }}
fanout.io/region: {{ .region }}
{{- end }}
{{- end -}}

{{/* Image of a service: <registry>/<repositoryPrefix>-<service>:<tag>, or a per-component override. */}}
{{- define "fanout.image" -}}
{{- $img := .root.Values.image -}}
{{- $override := .override | default dict -}}
{{- $repo := $override.repository | default (printf "%s-%s" $img.repositoryPrefix .service) -}}
{{- $tag := $override.tag | default $img.tag | default .root.Chart.AppVersion -}}
{{- if $img.registry -}}
{{- printf "%s/%s:%s" $img.registry $repo $tag -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "fanout.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "fanout.fullname" .)) -}}
{{- end -}}

{{/* The router's in-cluster URL (gateways name it in wrong_gateway hints unless router.publicUrl is set). */}}
{{- define "fanout.routerUrl" -}}
{{- .Values.router.publicUrl | default (printf "http://%s-router.%s.svc.%s:%v" (include "fanout.fullname" .) .Release.Namespace .Values.clusterDomain .Values.router.port) -}}
{{- end -}}

{{/* The region consumer group: userGroupIdTemplate with {region} replaced. */}}
{{- define "fanout.groupId" -}}
{{- .root.Values.gateway.userGroupIdTemplate | replace "{region}" .region -}}
{{- end -}}

{{/* Kafka settings every service reads (brokers may be overridden per gateway region). */}}
{{- define "fanout.kafkaEnv" -}}
- name: FANOUT_BROKERS
  value: {{ .brokers | default .root.Values.kafka.brokers | required "kafka.brokers is required (host:port[,host:port])" | quote }}
- name: FANOUT_TOPIC_BROADCAST
  value: {{ .root.Values.kafka.topics.broadcast | quote }}
- name: FANOUT_TOPIC_USERS
  value: {{ .root.Values.kafka.topics.users | quote }}
{{- end -}}

{{/* Settings of the topic layout the publisher and gateways must agree on. */}}
{{- define "fanout.streamEnv" -}}
- name: FANOUT_BROADCAST_PARTITIONS
  value: {{ .Values.kafka.partitions.broadcast | quote }}
- name: FANOUT_USER_PARTITIONS
  value: {{ .Values.kafka.partitions.users | quote }}
- name: FANOUT_STREAM_EPOCH
  value: {{ .Values.kafka.streamEpoch | quote }}
{{- end -}}

{{/* The component's free-form FANOUT_* settings (a map), then extraEnv (a list). */}}
{{- define "fanout.extraEnv" -}}
{{- range $k, $v := .env }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Environment variables read from the Secret: secretEnv maps a variable to a key of the Secret. */}}
{{- define "fanout.secretEnv" -}}
{{- $secret := include "fanout.secretName" .root -}}
{{- range $var, $ref := .secretEnv }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      {{- if kindIs "map" $ref }}
      key: {{ $ref.key }}
      optional: {{ $ref.optional | default false }}
      {{- else }}
      key: {{ $ref }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* Pod and container security: non-root uid 1000 (the image's), read-only root, no capabilities. */}}
{{- define "fanout.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "fanout.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/* HTTP probes on /healthz (liveness, start-up) and /readyz (readiness). */}}
{{- define "fanout.probes" -}}
startupProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: {{ .probes.startup.periodSeconds }}
  failureThreshold: {{ .probes.startup.failureThreshold }}
livenessProbe:
  httpGet: { path: /healthz, port: http }
  periodSeconds: {{ .probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .probes.liveness.failureThreshold }}
readinessProbe:
  httpGet: { path: /readyz, port: http }
  periodSeconds: {{ .probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .probes.readiness.failureThreshold }}
{{- end -}}

{{/*
preStop: a pause before SIGTERM, so that Services, kube-proxy and load balancers stop sending new
connections to a pod that is going away before it starts its drain.
*/}}
{{- define "fanout.preStop" -}}
{{- if gt (int .) 0 -}}
lifecycle:
  preStop:
    exec:
      command: ["sleep", "{{ . }}"]
{{- end }}
{{- end -}}

{{/* Checks that the pod's grace period covers preStop + the service's own shutdown limit. */}}
{{- define "fanout.checkGrace" -}}
{{- $need := add (int .preStop) (div (add (int .shutdownMs) 999) 1000) -}}
{{- if le (int .grace) $need -}}
{{- fail (printf "%s: terminationGracePeriodSeconds (%d) must be longer than the preStop pause (%d s) plus the shutdown limit (%d ms); set it above %d" .what (int .grace) (int .preStop) (int .shutdownMs) $need) -}}
{{- end -}}
{{- end -}}

{{/*
Topology spread for a component's pods: across zones and across nodes. Call with
(dict "root" $ "component" "gateway" "region" "eu" "spread" .Values.gateway.topologySpread).
*/}}
{{- define "fanout.topologySpread" -}}
{{- if .spread.enabled -}}
topologySpreadConstraints:
{{- range .spread.constraints }}
  - maxSkew: {{ .maxSkew }}
    topologyKey: {{ .topologyKey }}
    whenUnsatisfiable: {{ .whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "fanout.selectorLabels" (dict "root" $.root "component" $.component "region" $.region) | nindent 8 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling fields shared by every pod spec. */}}
{{- define "fanout.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* Annotations that let a plain Prometheus (no operator) find the metrics endpoint. */}}
{{- define "fanout.scrapeAnnotations" -}}
{{- if .root.Values.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- define "fanout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "fanout.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The gateway regions with defaults filled in, as a list of dicts (JSON, since templates return strings). */}}
{{- define "fanout.gatewayRegions" -}}
{{- $g := .Values.gateway -}}
{{- $out := list -}}
{{- $seen := dict -}}
{{- if not $g.regions -}}
{{- fail "gateway.regions must list at least one region" -}}
{{- end -}}
{{- range $g.regions -}}
{{- if not (regexMatch "^[a-z0-9-]{1,32}$" (.name | default "" | toString)) -}}
{{- fail (printf "gateway.regions: name %q must be 1 to 32 of [a-z0-9-]" (.name | default "" | toString)) -}}
{{- end -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "gateway.regions: region %q is listed twice" .name) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- $r := dict "name" .name -}}
{{- $_ := set $r "replicaCount" (hasKey . "replicaCount" | ternary .replicaCount $g.replicaCount) -}}
{{- $_ := set $r "kafkaBrokers" (.kafkaBrokers | default "") -}}
{{- $_ := set $r "publicUrl" (.publicUrl | default $g.publicUrl) -}}
{{- $_ := set $r "env" (merge (deepCopy (.env | default dict)) $g.env) -}}
{{- $_ := set $r "resources" (.resources | default $g.resources) -}}
{{- $_ := set $r "nodeSelector" (.nodeSelector | default $g.nodeSelector) -}}
{{- $_ := set $r "tolerations" (.tolerations | default $g.tolerations) -}}
{{- $_ := set $r "affinity" (.affinity | default $g.affinity) -}}
{{- $_ := set $r "autoscaling" (merge (deepCopy (.autoscaling | default dict)) $g.autoscaling) -}}
{{- $_ := set $r "perPodService" (merge (deepCopy (.perPodService | default dict)) $g.perPodService) -}}
{{- $out = append $out $r -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
