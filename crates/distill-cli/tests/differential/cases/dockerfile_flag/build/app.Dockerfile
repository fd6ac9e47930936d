# Built with -f build/app.Dockerfile: its own build/app.Dockerfile.dockerignore (excluding
# b.txt) replaces the context's .dockerignore (which excludes c.txt).
FROM distill-test/busybox:1
COPY . /ctx/
