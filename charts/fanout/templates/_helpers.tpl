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

{{/*
Kafka settings every service reads (brokers may be overridden per gateway region): brokers, topic
names, the durability of the topics it creates, and the client security (kafka.security). Call with
(dict "root" $ "brokers" <override or "">). Every workload includes it, so every workload checks
the values.
*/}}
{{- define "fanout.kafkaEnv" -}}
{{- $t := .root.Values.kafka.topics -}}
{{- include "fanout.checkKafkaTopics" .root -}}
- name: FANOUT_BROKERS
  value: {{ .brokers | default .root.Values.kafka.brokers | required "kafka.brokers is required (host:port[,host:port])" | quote }}
- name: FANOUT_TOPIC_BROADCAST
  value: {{ $t.broadcast | quote }}
- name: FANOUT_TOPIC_USERS
  value: {{ $t.users | quote }}
- name: FANOUT_TOPIC_REPLICATION_FACTOR
  value: {{ printf "%d" (int64 $t.replicationFactor) | quote }}
- name: FANOUT_TOPIC_MIN_INSYNC_REPLICAS
  value: {{ printf "%d" (int64 $t.minInsyncReplicas) | quote }}
- name: FANOUT_TOPIC_RETENTION_MS
  value: {{ printf "%d" (int64 $t.retentionMs) | quote }}
- name: FANOUT_TOPIC_STRICT
  value: {{ $t.strict | toString | quote }}
{{ include "fanout.kafkaSecurityEnv" .root }}
{{- end -}}

{{/* kafka.topics durability values: whole numbers that make sense together. */}}
{{- define "fanout.checkKafkaTopics" -}}
{{- $t := .Values.kafka.topics -}}
{{- range $k := list "replicationFactor" "minInsyncReplicas" "retentionMs" -}}
{{- $v := get $t $k -}}
{{- if or (not (kindIs "float64" $v | or (kindIs "int" $v) | or (kindIs "int64" $v))) (lt (float64 $v) 1.0) (ne (float64 $v) (float64 (int64 $v))) -}}
{{- fail (printf "kafka.topics.%s must be a whole number of at least 1 (got %v)" $k $v) -}}
{{- end -}}
{{- end -}}
{{- if lt (int64 $t.retentionMs) 60000 -}}
{{- fail (printf "kafka.topics.retentionMs must be at least 60000 (1 minute; got %d)" (int64 $t.retentionMs)) -}}
{{- end -}}
{{- if gt (int64 $t.minInsyncReplicas) (int64 $t.replicationFactor) -}}
{{- fail (printf "kafka.topics.minInsyncReplicas (%d) must not exceed kafka.topics.replicationFactor (%d): Kafka would refuse every acks=all write" (int64 $t.minInsyncReplicas) (int64 $t.replicationFactor)) -}}
{{- end -}}
{{- if not (kindIs "bool" $t.strict) -}}
{{- fail (printf "kafka.topics.strict must be true or false (got %v)" $t.strict) -}}
{{- end -}}
{{- end -}}

{{/* Where the Kafka Secrets and the OAuth provider ConfigMap are mounted (the *_FILE variables point here). */}}
{{- define "fanout.kafkaTlsDir" -}}/etc/fanout/kafka/tls{{- end -}}
{{- define "fanout.kafkaSaslDir" -}}/etc/fanout/kafka/sasl{{- end -}}
{{- define "fanout.kafkaOauthDir" -}}/app/kafka-oauth{{- end -}}

{{/*
kafka.security, checked and normalised: a dict (JSON) with protocol and mechanism in lower case and
tls / sasl telling whether each is on. Fails with the key to fix when the values do not fit together.
*/}}
{{- define "fanout.kafkaSecurity" -}}
{{- $s := .Values.kafka.security -}}
{{- $tls := $s.tls | default dict -}}
{{- $sasl := $s.sasl | default dict -}}
{{- $oauth := $sasl.oauth | default dict -}}
{{- $p := $s.protocol | default "plaintext" | toString | lower -}}
{{- if not (has $p (list "plaintext" "ssl" "sasl_plaintext" "sasl_ssl")) -}}
{{- fail (printf "kafka.security.protocol must be plaintext, ssl, sasl_plaintext or sasl_ssl (got %q)" ($s.protocol | toString)) -}}
{{- end -}}
{{- $tlsOn := has $p (list "ssl" "sasl_ssl") -}}
{{- $saslOn := hasPrefix "sasl_" $p -}}
{{- /* TLS */ -}}
{{- if and (not $tlsOn) (or $tls.existingSecret $tls.certKey $tls.keyKey $tls.keyPasswordKey $tls.serverName) -}}
{{- fail (printf "kafka.security.tls is set but kafka.security.protocol is %s: TLS settings need ssl or sasl_ssl" $p) -}}
{{- end -}}
{{- if and $tls.certKey (not $tls.keyKey) -}}
{{- fail "kafka.security.tls.certKey is set without kafka.security.tls.keyKey: mutual TLS needs the client certificate and its private key (both or neither)" -}}
{{- end -}}
{{- if and $tls.keyKey (not $tls.certKey) -}}
{{- fail "kafka.security.tls.keyKey is set without kafka.security.tls.certKey: mutual TLS needs the client certificate and its private key (both or neither)" -}}
{{- end -}}
{{- if and $tls.keyPasswordKey (not $tls.keyKey) -}}
{{- fail "kafka.security.tls.keyPasswordKey is set without a client key (kafka.security.tls.certKey and keyKey)" -}}
{{- end -}}
{{- if and $tls.certKey (not $tls.existingSecret) -}}
{{- fail "kafka.security.tls.certKey and keyKey need kafka.security.tls.existingSecret (the Secret holding the client certificate and key)" -}}
{{- end -}}
{{- if and $tls.existingSecret (not $tls.caKey) (not $tls.certKey) -}}
{{- fail "kafka.security.tls.existingSecret is set but names no key: set kafka.security.tls.caKey (a private CA) and/or certKey and keyKey (mutual TLS)" -}}
{{- end -}}
{{- /* SASL */ -}}
{{- $m := $sasl.mechanism | default "" | toString | lower | replace "_" "-" -}}
{{- $provider := $oauth.tokenProvider | default "" -}}
{{- if and (not $provider) $oauth.providerConfigMap -}}
{{- $provider = printf "%s/%s" (include "fanout.kafkaOauthDir" .) ($oauth.providerKey | required "kafka.security.sasl.oauth.providerKey is required with providerConfigMap") -}}
{{- end -}}
{{- if and (not $saslOn) (or $m $sasl.existingSecret $sasl.username $provider $oauth.tokenKey) -}}
{{- fail (printf "kafka.security.sasl is set but kafka.security.protocol is %s: SASL settings need sasl_plaintext or sasl_ssl" $p) -}}
{{- end -}}
{{- if $saslOn -}}
{{- if not $m -}}
{{- fail (printf "kafka.security.protocol is %s but kafka.security.sasl.mechanism is empty: set plain, scram-sha-256, scram-sha-512 or oauthbearer" $p) -}}
{{- end -}}
{{- if not (has $m (list "plain" "scram-sha-256" "scram-sha-512" "oauthbearer")) -}}
{{- fail (printf "kafka.security.sasl.mechanism must be plain, scram-sha-256, scram-sha-512 or oauthbearer (got %q)" ($sasl.mechanism | toString)) -}}
{{- end -}}
{{- if eq $m "oauthbearer" -}}
{{- if and $provider $oauth.tokenKey -}}
{{- fail "kafka.security.sasl.oauth: set one token source, tokenProvider (or providerConfigMap) or tokenKey, not both" -}}
{{- end -}}
{{- if not (or $provider $oauth.tokenKey) -}}
{{- fail "kafka.security.sasl.mechanism is oauthbearer but no token source is set: kafka.security.sasl.oauth.tokenProvider (or providerConfigMap) or oauth.tokenKey" -}}
{{- end -}}
{{- if and $oauth.tokenKey (not $sasl.existingSecret) -}}
{{- fail "kafka.security.sasl.oauth.tokenKey needs kafka.security.sasl.existingSecret (the Secret holding the token)" -}}
{{- end -}}
{{- if $sasl.username -}}
{{- fail "kafka.security.sasl.username is for plain and scram; oauthbearer takes its token from kafka.security.sasl.oauth" -}}
{{- end -}}
{{- else -}}
{{- if or $provider $oauth.tokenKey -}}
{{- fail (printf "kafka.security.sasl.oauth is set but kafka.security.sasl.mechanism is %s: it is for oauthbearer" $m) -}}
{{- end -}}
{{- if not $sasl.existingSecret -}}
{{- fail (printf "kafka.security.sasl.mechanism %s needs kafka.security.sasl.existingSecret: a Secret with the password (key %q) and, unless sasl.username is set, the user name (key %q)" $m ($sasl.passwordKey | default "") ($sasl.usernameKey | default "")) -}}
{{- end -}}
{{- if not $sasl.passwordKey -}}
{{- fail "kafka.security.sasl.passwordKey is empty: name the password's key in kafka.security.sasl.existingSecret" -}}
{{- end -}}
{{- if and (not $sasl.username) (not $sasl.usernameKey) -}}
{{- fail "kafka.security.sasl: set username, or usernameKey (the user name's key in existingSecret)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "protocol" $p "tls" $tlsOn "sasl" $saslOn "mechanism" $m "provider" $provider) -}}
{{- end -}}

{{/* The FANOUT_KAFKA_* variables of kafka.security: plain values and paths of mounted files, never a secret. */}}
{{- define "fanout.kafkaSecurityEnv" -}}
{{- $k := include "fanout.kafkaSecurity" . | fromJson -}}
{{- $s := .Values.kafka.security -}}
{{- $tlsDir := include "fanout.kafkaTlsDir" . -}}
{{- $saslDir := include "fanout.kafkaSaslDir" . -}}
- name: FANOUT_KAFKA_SECURITY_PROTOCOL
  value: {{ $k.protocol | quote }}
{{- if $k.tls }}
{{- with $s.tls }}
{{- if and .existingSecret .caKey }}
- name: FANOUT_KAFKA_TLS_CA_FILE
  value: {{ printf "%s/%s" $tlsDir .caKey | quote }}
{{- end }}
{{- if .certKey }}
- name: FANOUT_KAFKA_TLS_CERT_FILE
  value: {{ printf "%s/%s" $tlsDir .certKey | quote }}
- name: FANOUT_KAFKA_TLS_KEY_FILE
  value: {{ printf "%s/%s" $tlsDir .keyKey | quote }}
{{- end }}
{{- if .keyPasswordKey }}
- name: FANOUT_KAFKA_TLS_KEY_PASSWORD_FILE
  value: {{ printf "%s/%s" $tlsDir .keyPasswordKey | quote }}
{{- end }}
{{- with .serverName }}
- name: FANOUT_KAFKA_TLS_SERVERNAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if $k.sasl }}
{{- with $s.sasl }}
- name: FANOUT_KAFKA_SASL_MECHANISM
  value: {{ $k.mechanism | quote }}
{{- if eq $k.mechanism "oauthbearer" }}
{{- if $k.provider }}
- name: FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER
  value: {{ $k.provider | quote }}
{{- else }}
- name: FANOUT_KAFKA_OAUTH_TOKEN_FILE
  value: {{ printf "%s/%s" $saslDir .oauth.tokenKey | quote }}
{{- end }}
{{- else }}
{{- if .username }}
- name: FANOUT_KAFKA_SASL_USERNAME
  value: {{ .username | quote }}
{{- else }}
- name: FANOUT_KAFKA_SASL_USERNAME_FILE
  value: {{ printf "%s/%s" $saslDir .usernameKey | quote }}
{{- end }}
- name: FANOUT_KAFKA_SASL_PASSWORD_FILE
  value: {{ printf "%s/%s" $saslDir .passwordKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volume mounts of the Kafka Secrets and the OAuth provider ConfigMap (read-only), if any. */}}
{{- define "fanout.kafkaVolumeMounts" -}}
{{- $k := include "fanout.kafkaSecurity" . | fromJson -}}
{{- $s := .Values.kafka.security -}}
{{- if and $k.tls $s.tls.existingSecret }}
- { name: kafka-tls, mountPath: {{ include "fanout.kafkaTlsDir" . }}, readOnly: true }
{{- end }}
{{- if and $k.sasl $s.sasl.existingSecret }}
- { name: kafka-sasl, mountPath: {{ include "fanout.kafkaSaslDir" . }}, readOnly: true }
{{- end }}
{{- if and $k.sasl $s.sasl.oauth.providerConfigMap }}
- { name: kafka-oauth, mountPath: {{ include "fanout.kafkaOauthDir" . }}, readOnly: true }
{{- end }}
{{- end -}}

{{/* The volumes behind fanout.kafkaVolumeMounts. */}}
{{- define "fanout.kafkaVolumes" -}}
{{- $k := include "fanout.kafkaSecurity" . | fromJson -}}
{{- $s := .Values.kafka.security -}}
{{- if and $k.tls $s.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ $s.tls.existingSecret }}
{{- end }}
{{- if and $k.sasl $s.sasl.existingSecret }}
- name: kafka-sasl
  secret:
    secretName: {{ $s.sasl.existingSecret }}
{{- end }}
{{- if and $k.sasl $s.sasl.oauth.providerConfigMap }}
- name: kafka-oauth
  configMap:
    name: {{ $s.sasl.oauth.providerConfigMap }}
{{- end }}
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
