"""The stages, one module each, and the pipeline's order.

A new stage is a module exposing its Stage objects (groundwork.stages.Stage) and a line in PIPELINE; the
runner needs no change. Steps run in this order; hosts of one step run in parallel.
"""

from tasks import ca, dns, docker, etcd, host_prep, lb, registry

PIPELINE = [
    host_prep.STAGE,    # every host
    *dns.STAGES,        # proxy: the primary, then the secondaries; then every host's resolver
    ca.STAGE,           # ops: the certificate authority
    docker.STAGE,       # master_compute and ops: docker with the seeds' daemon.json
    registry.STAGE,     # ops: the registry behind nginx at harbor.od.com
    *etcd.STAGES,       # ops: etcd's certificates from the CA; then etcd: the members, one at a time
    *lb.STAGES,         # proxy: nginx's L4 proxy to the apiservers; then keepalived's VIP, one host at a time
]
