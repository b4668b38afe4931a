{{/* Names, labels and the rules the operator needs; see docs/deploy.md for the RBAC table. */}}

{{- define "eso-rs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eso-rs.fullname" -}}
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

{{- define "eso-rs.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "eso-rs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eso-rs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eso-rs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "eso-rs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "eso-rs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eso-rs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The cluster-scoped controllers run only when the operator watches every namespace (the
operator turns them off itself under --namespace); "true" or empty.
*/}}
{{- define "eso-rs.clusterStores" -}}
{{- if and .Values.processClusterStore (not (include "eso-rs.scopedNamespaces" .)) }}true{{ end }}
{{- end }}

{{- define "eso-rs.clusterExternalSecrets" -}}
{{- if and .Values.processClusterExternalSecret (not (include "eso-rs.scopedNamespaces" .)) }}true{{ end }}
{{- end }}

{{/* The watched namespaces, comma-separated (scopedNamespace, then scopedNamespaces); empty: all. */}}
{{- define "eso-rs.scopedNamespaces" -}}
{{- $all := list }}
{{- with .Values.scopedNamespace }}{{ $all = append $all . }}{{ end }}
{{- range .Values.scopedNamespaces }}{{ $all = append $all . }}{{ end }}
{{- $all | uniq | join "," }}
{{- end }}

{{/* Refused value combinations (included by deployment.yaml; one fail aborts the whole render). */}}
{{- define "eso-rs.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElect) }}
{{- fail (printf "replicaCount is %d but leaderElect is false: every replica would reconcile and they would race on each Secret and status; set leaderElect: true (the default) or replicaCount: 1" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.scopedRBAC (not (include "eso-rs.scopedNamespaces" .)) }}
{{- fail "scopedRBAC: true needs scopedNamespace or scopedNamespaces: the namespaces the Roles grant access to" }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor scrapes that Service" }}
{{- end }}
{{- if not (has .Values.metricsPerObject (list "leader" "all")) }}
{{- fail (printf "metricsPerObject is %q: use leader or all" .Values.metricsPerObject) }}
{{- end }}
{{- end }}

{{/*
Rules for namespaced objects: a Role in scoped mode, part of the ClusterRole otherwise.
Each rule names the code that needs it (docs/deploy.md has the table).
*/}}
{{- define "eso-rs.namespacedRules" -}}
# ExternalSecret controller: the watch of ExternalSecrets and of their status (every replica);
# the generator cleanup finalizer (server-side apply of metadata.finalizers).
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets"]
  verbs: ["list", "watch", "patch"]
# Generators (sourceRef.generatorRef): the generator object is read when a value is generated.
- apiGroups: ["generators.external-secrets.io"]
  resources: ["passwords", "uuids", "sshkeys", "fakes", "ecrauthorizationtokens", "stssessiontokens", "vaultdynamicsecrets", "webhooks"]
  verbs: ["get"]
# GeneratorStates of stateful generators (a Vault lease): created with server-side apply,
# listed by ExternalSecret, marked superseded (patch), deleted once cleaned up.
- apiGroups: ["generators.external-secrets.io"]
  resources: ["generatorstates"]
  verbs: ["list", "create", "patch", "delete"]
# ExternalSecret controller: the Ready condition and refresh times.
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets/status"]
  verbs: ["patch"]
# Managed Secrets carry an owner reference with blockOwnerDeletion to their ExternalSecret.
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets/finalizers"]
  verbs: ["update"]
# Store cache of every replica (SecretStore controller and ExternalSecret store lookups).
- apiGroups: ["external-secrets.io"]
  resources: ["secretstores"]
  verbs: ["list", "watch"]
{{- if .Values.processSecretStore }}
# SecretStore controller: the Ready condition and capabilities.
- apiGroups: ["external-secrets.io"]
  resources: ["secretstores/status"]
  verbs: ["patch"]
{{- end }}
# Target Secrets: watched by label (managed=true), read before a write, written with
# server-side apply (which creates), deleted by deletionPolicy Delete; store credentials
# and templateFrom Secrets are read with get.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# templateFrom ConfigMaps and store caProvider ConfigMaps.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
# TokenRequest for stores that authenticate as a ServiceAccount (vault kubernetes auth,
# kubernetes provider auth.serviceAccount).
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
# The role of AWS web identity (IRSA): the ServiceAccount's eks.amazonaws.com/role-arn.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get"]
# PushSecret controller: the watch of PushSecrets, its finalizer (patch) and status.
- apiGroups: ["external-secrets.io"]
  resources: ["pushsecrets"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["pushsecrets/status"]
  verbs: ["patch"]
# Events on ExternalSecrets and stores (kube-runtime's Recorder: create, then patch a series).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Rules that only exist cluster-wide. */}}
{{- define "eso-rs.clusterRules" -}}
# ClusterGenerators (cluster-scoped) referenced by sourceRef.generatorRef.
- apiGroups: ["generators.external-secrets.io"]
  resources: ["clustergenerators"]
  verbs: ["get"]
# Namespace cache of the ExternalSecret controller (ClusterSecretStore conditions) and the
# ClusterExternalSecret fan-out.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- if include "eso-rs.clusterStores" . }}
# ClusterSecretStore cache and controller.
- apiGroups: ["external-secrets.io"]
  resources: ["clustersecretstores"]
  verbs: ["list", "watch"]
{{- if .Values.processSecretStore }}
- apiGroups: ["external-secrets.io"]
  resources: ["clustersecretstores/status"]
  verbs: ["patch"]
{{- end }}
{{- end }}
{{- if include "eso-rs.clusterExternalSecrets" . }}
# ClusterExternalSecret controller: watch, status, and the ExternalSecrets it fans out
# (server-side apply, which creates, and delete when a namespace stops matching).
- apiGroups: ["external-secrets.io"]
  resources: ["clusterexternalsecrets"]
  verbs: ["list", "watch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterexternalsecrets/status"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterexternalsecrets/finalizers"]
  verbs: ["update"]
- apiGroups: ["external-secrets.io"]
  resources: ["externalsecrets"]
  verbs: ["create", "patch", "delete"]
{{- end }}
# ClusterPushSecret controller: watch, status, and the PushSecrets it fans out (server-side
# apply, which creates, and delete when a namespace stops matching).
- apiGroups: ["external-secrets.io"]
  resources: ["clusterpushsecrets"]
  verbs: ["list", "watch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterpushsecrets/status"]
  verbs: ["patch"]
- apiGroups: ["external-secrets.io"]
  resources: ["clusterpushsecrets/finalizers"]
  verbs: ["update"]
- apiGroups: ["external-secrets.io"]
  resources: ["pushsecrets"]
  verbs: ["create", "delete"]
{{- end }}
