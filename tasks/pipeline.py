"""The pipeline's order: every stage module's Stage objects, in the order a full run takes them.

A new stage is a module exposing its Stage objects (groundwork.stages.Stage) and a line in PIPELINE; the
runner needs no change. Steps run in this order; hosts of one step run in parallel.
"""

from groundwork.tasks import (ca, dns, docker, etcd, host_prep, k8s_admin, k8s_binaries, k8s_certs, k8s_control_plane,
                              k8s_images, k8s_node, lb, pod_network, registry, time_sync)

PIPELINE = [
    host_prep.STAGE,    # every host
    *time_sync.STAGES,  # ops: chrony serving time; then every other host: chrony following it
    *dns.STAGES,        # proxy: the primary, then the secondaries; then every host's resolver
    ca.STAGE,           # ops: the certificate authority
    docker.STAGE,       # master_compute and ops: docker with the seeds' daemon.json
    registry.STAGE,     # ops: the registry behind nginx at harbor.od.com
    *etcd.STAGES,       # ops: etcd's certificates from the CA; then etcd: the members, one at a time
    *lb.STAGES,         # proxy: nginx's L4 proxy to the apiservers; then keepalived's VIP, one host at a time
    *(KUBERNETES := [
    k8s_certs.STAGE,    # ops: Kubernetes' certificates from the CA
    k8s_images.STAGE,   # ops: the pause and workload images, pushed to the registry
    k8s_binaries.STAGE,  # master_compute: the server binaries from the tarball, kubectl
    k8s_control_plane.STAGE,  # master_compute: apiserver, controller-manager, scheduler, one master at a time
    pod_network.STAGE,  # master_compute: host-gw routes between the pod subnets
    k8s_node.STAGE,     # master_compute: kubelet and kube-proxy through the VIP
    k8s_admin.STAGE,    # ops: kubectl and the admin kubeconfig
    ]),
]
