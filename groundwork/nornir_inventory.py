"""Nornir's inventory built from groundwork's validated model: the inventory files are read once, by
inventory.load_inventory, and Nornir's hosts carry what the model resolved (address, login, netmiko's merged
extras with the host key policy pinned), not a second reading of the same files by SimpleInventory."""

from __future__ import annotations

from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts
from nornir.core.inventory import Inventory as NornirInventory
from nornir.core.plugins.inventory import InventoryPluginRegister

from groundwork.inventory import Inventory

PLUGIN = "GroundworkModelInventory"


class ModelInventory:
    """A Nornir inventory plugin: InitNornir(inventory={"plugin": PLUGIN, "options": {"model": inventory}})."""

    def __init__(self, model: Inventory) -> None:
        self.model = model

    def load(self) -> NornirInventory:
        defaults = Defaults()
        hosts = Hosts({name: Host(name=name, hostname=str(h.address), port=h.ssh_port, username=h.ssh_user,
                                  platform=h.platform, defaults=defaults,
                                  connection_options={"netmiko": ConnectionOptions(extras=dict(h.ssh_extras))})
                       for name, h in self.model.hosts.items()})
        return NornirInventory(hosts=hosts, groups=Groups(), defaults=defaults)


InventoryPluginRegister.register(PLUGIN, ModelInventory)
