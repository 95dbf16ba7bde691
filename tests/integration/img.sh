# img.sh: helpers of the image tests, sourced after lib.sh.
# shellcheck shell=bash

# img_sql_insert PROJECT NAME VERSION FILE [ENCRYPT [HARDWARE [ROW]]]: put a
# completed upload of FILE and its image row in place with SQL (as the tus
# upload leaves them: contiguous chunk rows of ROW bytes, default 1 MiB,
# the last one shorter), PostgreSQL reading FILE itself. HARDWARE is an SQL
# text[] literal ('{}' default). Sets IMG_ID.
img_sql_insert() {
    local project=$1 name=$2 version=$3 file=$4 encrypt=${5:-false} hw=${6:-'{}'}
    local row=${7:-1048576} size uid sha
    size=$(stat -c %s "$file")
    sha=$(sha256sum "$file" | cut -c1-64)
    uid=$(od -An -tu1 -N26 /dev/urandom | tr -s ' ' '\n' | grep . |
        awk '{ printf "%s", substr("abcdefghijklmnopqrstuvwxyz234567", $1 % 32 + 1, 1) }')
    IMG_ID=$(ql_psql "
        WITH p AS (SELECT id FROM projects WHERE name = '$project'),
        u AS (INSERT INTO uploads (id, project_id, image_name, version, version_key,
                upload_length, upload_offset, hardware, encrypt, created_by,
                completed_at, expires_at)
            SELECT '$uid', p.id, '$name', '$version',
                (string_to_array('$version', '.')::int[] || '{0,0,0,0}'::int[])[1:4],
                $size, $size, '$hw', $encrypt, 'test', now(), now() + interval '1 day'
            FROM p RETURNING id, project_id),
        c AS (INSERT INTO image_chunks (upload_id, variant, off, data)
            SELECT u.id, 0, g * $row, pg_read_binary_file('$file', g * $row,
                least($row, $size - g * $row))
            FROM u, generate_series(0, ($size + $row - 1) / $row - 1) g RETURNING 1),
        i AS (INSERT INTO images (project_id, name, version, version_key, upload_id,
                size, sha256, hardware, encrypt, uploaded_by)
            SELECT u.project_id, '$name', '$version',
                (string_to_array('$version', '.')::int[] || '{0,0,0,0}'::int[])[1:4],
                u.id, $size, decode('$sha', 'hex'), '$hw', $encrypt, 'test' FROM u
            RETURNING id)
        SELECT i.id FROM i, (SELECT count(*) FROM c) n") && [ -n "$IMG_ID" ] ||
        ql__fail_at 1 "img_sql_insert $name $version: insert failed"
}

# img_variant_out ID VARIANT FILE: the image's chunk rows of VARIANT, in
# order, concatenated into FILE.
img_variant_out() {
    ql_psql "SELECT encode(c.data, 'hex') FROM image_chunks c JOIN images i
             ON i.upload_id = c.upload_id WHERE i.id = $1 AND c.variant = $2
             ORDER BY c.off" |
        python3 -c 'import sys
out = open(sys.argv[1], "wb")
for line in sys.stdin:
    out.write(bytes.fromhex(line.strip()))' "$3" ||
        ql__fail_at 1 "img_variant_out $1 $2: failed"
}

# img_sign PROJECT ID [JSON] [CURL ARGS...]: POST .../images/ID/sign in the
# api_admin_session (an empty body when JSON is "").
img_sign() {
    local p=$1 id=$2 body=${3:-}
    shift 3 2>/dev/null || shift $#
    if [ -n "$body" ]; then
        api POST "/api/v1/projects/$p/images/$id/sign" "$body"
    else
        api POST "/api/v1/projects/$p/images/$id/sign"
    fi
}
