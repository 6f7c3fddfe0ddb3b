{{/*
A stateless HTTP service: Deployment, Service, and optionally Ingress, HPA and PDB. Call with
(dict "root" $ "component" "router" "values" .Values.router "env" <rendered env list>).
*/}}
{{- define "fanout.httpComponent" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := printf "%s-%s" (include "fanout.fullname" $root) .component -}}
{{- $sel := dict "root" $root "component" .component -}}
{{- include "fanout.checkGrace" (dict "what" .component "grace" $v.terminationGracePeriodSeconds "preStop" $v.preStopSleepSeconds "shutdownMs" $v.shutdownGraceMs) }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "fanout.labels" $sel | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxUnavailable: 0, maxSurge: 1 }
  selector:
    matchLabels:
      {{- include "fanout.selectorLabels" $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fanout.labels" $sel | nindent 8 }}
      {{- with (printf "%s\n%s" (include "fanout.scrapeAnnotations" (dict "root" $root "port" $v.port)) ($v.podAnnotations | default dict | toYaml) | trim | trimSuffix "{}" | trim) }}
      annotations:
        {{- . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "fanout.serviceAccountName" $root }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "fanout.podSecurityContext" $root | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with include "fanout.scheduling" $v | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- with include "fanout.topologySpread" (dict "root" $root "component" .component "spread" $v.topologySpread) | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "fanout.image" (dict "root" $root "service" .component "override" $v.image) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          ports:
            - name: http
              containerPort: {{ $v.port }}
          env:
            - name: POD_NAME
              valueFrom: { fieldRef: { fieldPath: metadata.name } }
            - name: FANOUT_HOST
              value: "0.0.0.0"
            - name: FANOUT_PORT
              value: {{ $v.port | quote }}
            {{- include "fanout.kafkaEnv" (dict "root" $root) | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with include "fanout.secretEnv" (dict "root" $root "secretEnv" $v.secretEnv) | trim }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with include "fanout.extraEnv" $v | trim }}
            {{- . | nindent 12 }}
            {{- end }}
          {{- include "fanout.probes" $root.Values | nindent 10 }}
          {{- with include "fanout.preStop" $v.preStopSleepSeconds | trim }}
          {{- . | nindent 10 }}
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "fanout.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - { name: tmp, mountPath: /tmp }
            {{- with include "fanout.kafkaVolumeMounts" $root | trim }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: { sizeLimit: 256Mi }
        {{- with include "fanout.kafkaVolumes" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "fanout.labels" $sel | nindent 4 }}
    fanout.io/scrape: "true"
  {{- with $v.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "fanout.selectorLabels" $sel | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.port }}
      targetPort: http
    - name: metrics
      port: {{ $v.port }}
      targetPort: http
{{- if $v.ingress.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $name }}
  labels:
    {{- include "fanout.labels" $sel | nindent 4 }}
  {{- with $v.ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $v.ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if $v.ingress.tlsSecretName }}
  tls:
    - secretName: {{ $v.ingress.tlsSecretName }}
      hosts: [{{ $v.ingress.host | quote }}]
  {{- end }}
  rules:
    - host: {{ $v.ingress.host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ $name }}
                port:
                  name: http
{{- end }}
{{- if $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "fanout.labels" $sel | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if $v.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "fanout.labels" $sel | nindent 4 }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "fanout.selectorLabels" $sel | nindent 6 }}
{{- end }}
{{- end -}}
