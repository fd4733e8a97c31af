<?php
// bench/sitefiles: writes (or deletes) one file of the site the way an application does,
// as the site's user through php-fpm. ?op=put&name=N&size=BYTES[&rename=1] | ?op=del&name=N
$dir = __DIR__ . '/data';
if (!is_dir($dir) && !mkdir($dir, 0755, true) && !is_dir($dir)) { http_response_code(500); exit("mkdir failed\n"); }
$name = basename($_GET['name'] ?? '');
if ($name === '' || $name[0] === '.') { http_response_code(400); exit("bad name\n"); }
$path = "$dir/$name";
if (($_GET['op'] ?? 'put') === 'del') { @unlink($path); exit("deleted\n"); }
$size = max(0, (int)($_GET['size'] ?? 1024));
$tmp = isset($_GET['rename']) ? "$dir/.tmp-" . bin2hex(random_bytes(6)) : $path;
$f = fopen($tmp, 'wb');
if (!$f) { http_response_code(500); exit("open failed\n"); }
$left = $size;
$block = random_bytes(min($size, 1 << 20) ?: 1);
while ($left > 0) {
    $n = min($left, strlen($block));
    if (fwrite($f, substr($block, 0, $n)) !== $n) { http_response_code(507); exit("write failed\n"); }
    $left -= $n;
}
fclose($f);
if ($tmp !== $path && !rename($tmp, $path)) { http_response_code(500); exit("rename failed\n"); }
clearstatcache();
echo json_encode(['size' => filesize($path), 'mtime' => filemtime($path)]), "\n";
