"""An example test bed: tests that use the cluster hvlab builds.

Run them against the embedded simulated host (no Windows needed):

    pytest examples --hvlab-lab s2d-2node

or against a real Hyper-V host (HVLAB_HOST, HVLAB_USER, HVLAB_PASSWORD set), keeping
the lab for the next run:

    pytest examples --hvlab-lab labs/s2d-2node.yaml --hvlab-keep

The `hvlab_lab` fixture (hvlab's pytest plugin) brings the lab up once per session,
or reuses it when it is complete, and hands each test a handle to it.
"""

from __future__ import annotations


def test_a_file_written_to_the_csv_on_one_node_is_read_on_another(hvlab_lab):
    first, second = hvlab_lab.nodes[:2]
    probe = hvlab_lab.csv_paths[0] + "\\hvlab-example.txt"
    hvlab_lab.run(first, "Set-Content", Path=probe, Value=f"written on {first}")
    try:
        assert hvlab_lab.run(second, "Get-Content", Path=probe) == [f"written on {first}"]
    finally:
        hvlab_lab.run(first, "Remove-Item", Path=probe, Force=True)


def test_the_ha_vm_keeps_running_through_a_live_migration(hvlab_lab):
    vm = hvlab_lab.ha_vms[0]
    source = hvlab_lab.owner_of(vm)
    target = next(node for node in hvlab_lab.nodes if node.lower() != source.lower())
    before = hvlab_lab.uptime(vm)
    hvlab_lab.run(
        source, "Move-ClusterVirtualMachineRole", Name=vm, Node=target, MigrationType="Live"
    )
    assert hvlab_lab.owner_of(vm).lower() == target.lower()
    after = hvlab_lab.uptime(vm)
    # Live migration moves a running VM: it did not restart on the way.
    assert before is not None and after is not None and after >= before
    assert hvlab_lab.status().ha_vms[vm]["state"] == "Online"


def test_every_node_is_up_and_the_pool_is_healthy(hvlab_lab):
    status = hvlab_lab.status()
    assert {n.lower() for n in status.nodes} == {n.lower() for n in hvlab_lab.nodes}
    assert all(state == "Up" for state in status.nodes.values())
    assert status.pool_health == "Healthy"
