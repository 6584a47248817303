"""Seeds for the bridge fuzz target (Hack/fuzz/BridgeFuzz.swift): short scripts of API calls and
watch events in its step format (opcode byte, two-byte little-endian length, payload whose first
byte selects service, credentials and variant). Usage: bridge-seeds.py DIRECTORY"""
import os
import sys

REGISTER, REGISTER_VALID, DEREGISTER, EDS, CDS, ANY, WATCH, READ = range(8)
SLICE = (b'{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"web-abc",'
         b'"namespace":"default","labels":{"kubernetes.io/service-name":"web",'
         b'"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io"}},"addressType":"IPv4",'
         b'"endpoints":[{"addresses":["10.1.0.5"],"conditions":{"ready":true,"serving":true,"terminating":false},'
         b'"targetRef":{"kind":"Pod","name":"web-1"},"zone":"a"}],"ports":[{"name":"http","port":8080,"protocol":"TCP"}]}')


def step(opcode, payload):
    return bytes([opcode, len(payload) & 0xFF, len(payload) >> 8]) + payload


SEEDS = {
    "register-form": step(REGISTER, b"\x00ip=10.0.0.7&port=8080&revision=abc&service_repo_name=web"
                          b"&tags=%7B%22az%22%3A%22us-east-1a%22%7D") + step(READ, b"\x01"),
    "register-json": step(REGISTER, b'\x10{"ip":"2001:db8::7","port":443,"revision":"r1","tags":{"canary":true}}')
                     + step(READ, b"\x00"),
    "register-deregister": step(REGISTER_VALID, b"\x01\x1f\x90\x01\x02") + step(DEREGISTER, b"\x01") + step(READ, b"\x01"),
    "eds": step(REGISTER_VALID, b"\x00\x00\x50\x03\x04")
           + step(EDS, b'\x00{"version_info":"","resource_names":["web"],'
                       b'"type_url":"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment","node":{"id":"n1"}}'),
    "cds": step(REGISTER_VALID, b"\x02\x00\x50\x03\x05") + step(CDS, b'\x00{"node":{"id":"n1"}}'),
    "slice": step(WATCH, b"\x00" + SLICE) + step(READ, b"\x00") + step(WATCH, b"\x01" + SLICE) + step(WATCH, b"\x07"),
    "unauthenticated": step(REGISTER_VALID, b"\x40\x00\x50\x03\x04") + step(REGISTER_VALID, b"\x80\x00\x50\x03\x04")
                       + step(ANY, b"\x03/v1/registration/web/10.0.3.4:80"),
}

for name, script in SEEDS.items():
    with open(os.path.join(sys.argv[1], name), "wb") as out:
        out.write(script)
