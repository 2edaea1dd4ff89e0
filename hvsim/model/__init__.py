"""The Windows world hvsim serves: host, Hyper-V, disks, networks, guests, AD, clusters."""
