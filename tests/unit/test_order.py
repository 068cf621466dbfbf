"""The pipeline's order: stages as tasks/pipeline.py lists them, hosts proxy first, then ops, then master_compute."""

from groundwork.inventory import load_inventory
from groundwork.runner import order_hosts
from groundwork.tasks.pipeline import PIPELINE
from tests.conftest import copy_seed_inventory


def test_stages_run_in_the_seeds_order():
    assert [s.name for s in PIPELINE] == ["host_prep", "time_server", "time_sync", "dns_primary", "dns_secondary", "dnsmasq", "resolver", "ca",
                                          "docker", "registry", "etcd_certs", "etcd", "l4proxy", "vip",
                                          "k8s_certs", "k8s_images", "k8s_binaries", "k8s_control_plane", "pod_network",
                                          "k8s_node", "k8s_admin"]


def test_hosts_are_ordered_proxy_ops_master_compute_whatever_the_file_order(tmp_path):
    hosts = list(load_inventory(copy_seed_inventory(tmp_path)).hosts.values())
    ordered = [h.name for h in order_hosts(list(reversed(hosts)))]
    assert ordered == ["hdss7-11", "hdss7-12", "hdss7-200", "hdss7-21", "hdss7-22"]
